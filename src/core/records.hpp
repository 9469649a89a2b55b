// The model's records: users, tokens, jobs and items as plain values, the
// shape in which they cross every boundary (store -> jobs -> event hub ->
// server). Only the server turns them into JSON (server/json.hpp), at the
// edge. Ids are the store's row ids; times are milliseconds since the Unix
// epoch (UTC).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/image_format.hpp"
#include "core/reason.hpp"

namespace litchi {

using UserId = std::int64_t;
using JobId = std::int64_t;
using ItemId = std::int64_t;
using TokenId = std::int64_t;
using TimeMs = std::int64_t;  // ms since epoch, UTC
// The store numbers its commits 1, 2, 3... in the order they happened; every
// change notification carries the number of the commit that made it, and a
// snapshot says which commit it is as of (see store/observer.hpp). 0: none.
using CommitId = std::uint64_t;

TimeMs now_ms();

// queued: nothing started yet; running: something started; done: nothing
// queued or active (done even with failures); paused; cancelled (final).
enum class JobState { queued, running, paused, done, cancelled };

enum class ItemState { queued, active, done, failed, cancelled };

std::string_view to_string(JobState state);
std::string_view to_string(ItemState state);
std::optional<JobState> parse_job_state(std::string_view text);
std::optional<ItemState> parse_item_state(std::string_view text);

struct UserRecord {
    UserId id = 0;
    std::string name;
    TimeMs created = 0;
};

// api: made by `litchi token create` or POST /api/tokens, no expiry unless
// asked. session: a sign-in (cookie). link: the first-start login link, good
// for one exchange into a session (POST /api/login {"token"}), never a bearer.
enum class TokenKind { api, session, link };
std::string_view to_string(TokenKind kind);
std::optional<TokenKind> parse_token_kind(std::string_view text);

struct TokenRecord {
    TokenId id = 0;
    UserId user = 0;
    TokenKind kind = TokenKind::api;
    std::string name;  // given at creation (API tokens), may be empty
    TimeMs created = 0;
    std::optional<TimeMs> last_used;
    std::optional<TimeMs> expires;
    bool revoked = false;
};

// Exact per-state counts, kept on the job row in the same transaction as
// every item transition. total == queued + active + done + failed + cancelled.
struct JobCounts {
    std::int64_t total = 0;
    std::int64_t queued = 0;
    std::int64_t active = 0;
    std::int64_t done = 0;
    std::int64_t failed = 0;
    std::int64_t cancelled = 0;

    std::int64_t& of(ItemState state);
    std::int64_t of(ItemState state) const;
    bool operator==(const JobCounts&) const = default;
};

// A job as the API shows it (plus the owner, for routing events).
struct JobSnapshot {
    JobId id = 0;
    UserId user = 0;
    std::string name;
    JobState state = JobState::queued;
    TimeMs created = 0;
    TimeMs updated = 0;
    JobCounts counts;
    std::uint64_t bytes = 0;    // sum of done items' bytes
    double rate = 0;            // items finished per second, recently (as shown_rate rounds)
    std::optional<double> eta;  // seconds until done at that rate; none when unknown
};

// A rate as the API shows it: one decimal below 10/s (a tenth of an item per
// second matters to a slow job), whole from 10/s up (there the decimal is noise
// from the window's edges, and costs message bytes); 0 for anything unusable.
double shown_rate(double items_per_second);

struct ItemRecord {
    ItemId id = 0;
    JobId job = 0;
    std::int64_t position = 0;  // 0-based index in the job's input order
    std::string url;
    ItemState state = ItemState::queued;
    FailureReason reason = FailureReason::none;  // failed/cancelled only
    int http_status = 0;                         // 0: none
    std::string sha256;                          // done only
    std::uint64_t bytes = 0;                     // done only
    int width = 0, height = 0;                   // done only
    ImageFormat format = ImageFormat::unknown;   // done only
    int attempts = 0;
    TimeMs updated = 0;
};

// A blob file in the content-addressed store: DIR/blobs/ab/<sha256>.<ext>.
struct BlobKey {
    std::string sha256;
    ImageFormat format = ImageFormat::unknown;
    bool operator==(const BlobKey&) const = default;
};

}  // namespace litchi
