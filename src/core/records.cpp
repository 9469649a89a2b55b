// Names of the store's states, as the API and the database spell them.
#include "core/records.hpp"

#include <array>
#include <chrono>
#include <cmath>
#include <utility>

namespace litchi {
namespace {

constexpr std::array<std::pair<JobState, std::string_view>, 5> kJobStates{{
    {JobState::queued, "queued"},
    {JobState::running, "running"},
    {JobState::paused, "paused"},
    {JobState::done, "done"},
    {JobState::cancelled, "cancelled"},
}};

constexpr std::array<std::pair<ItemState, std::string_view>, 5> kItemStates{{
    {ItemState::queued, "queued"},
    {ItemState::active, "active"},
    {ItemState::done, "done"},
    {ItemState::failed, "failed"},
    {ItemState::cancelled, "cancelled"},
}};

template <class Enum, std::size_t N>
std::string_view name_of(const std::array<std::pair<Enum, std::string_view>, N>& names,
                         Enum value) {
    for (const auto& [v, name] : names)
        if (v == value) return name;
    return "unknown";
}

template <class Enum, std::size_t N>
std::optional<Enum> parse_name(const std::array<std::pair<Enum, std::string_view>, N>& names,
                               std::string_view text) {
    for (const auto& [v, name] : names)
        if (name == text) return v;
    return std::nullopt;
}

}  // namespace

TimeMs now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string_view to_string(JobState state) {
    return name_of(kJobStates, state);
}
std::string_view to_string(ItemState state) {
    return name_of(kItemStates, state);
}
std::optional<JobState> parse_job_state(std::string_view text) {
    return parse_name(kJobStates, text);
}
std::optional<ItemState> parse_item_state(std::string_view text) {
    return parse_name(kItemStates, text);
}

std::string_view to_string(TokenKind kind) {
    switch (kind) {
        case TokenKind::api:
            return "api";
        case TokenKind::session:
            return "session";
        case TokenKind::link:
            return "link";
    }
    return "api";
}

std::optional<TokenKind> parse_token_kind(std::string_view text) {
    for (auto kind : {TokenKind::api, TokenKind::session, TokenKind::link})
        if (text == to_string(kind)) return kind;
    return std::nullopt;
}

std::int64_t& JobCounts::of(ItemState state) {
    switch (state) {
        case ItemState::queued:
            return queued;
        case ItemState::active:
            return active;
        case ItemState::done:
            return done;
        case ItemState::failed:
            return failed;
        case ItemState::cancelled:
            return cancelled;
    }
    return queued;  // unreachable: every enumerator is handled above
}

std::int64_t JobCounts::of(ItemState state) const {
    return const_cast<JobCounts*>(this)->of(state);
}

double shown_rate(double items_per_second) {
    if (!std::isfinite(items_per_second) || items_per_second <= 0) return 0;
    return items_per_second < 10.0 ? std::round(items_per_second * 10.0) / 10.0
                                   : std::round(items_per_second);
}

}  // namespace litchi
