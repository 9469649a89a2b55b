// See client_message.hpp.
#include "server/client_message.hpp"

#include <boost/json/parse.hpp>
#include <cmath>

namespace litchi::server {

namespace json = boost::json;

namespace {

ClientMessage invalid(LiveError error, std::string_view why) {
    ClientMessage message;
    message.error = error;
    message.why = why;
    return message;
}

}  // namespace

std::optional<std::uint64_t> seq_of(const json::value& value) {
    if (value.is_uint64()) return value.get_uint64();
    if (value.is_int64() && value.get_int64() >= 0)
        return static_cast<std::uint64_t>(value.get_int64());
    if (value.is_double()) {
        double d = value.get_double();
        if (d >= 0 && d < 1.8e19 && std::floor(d) == d) return static_cast<std::uint64_t>(d);
    }
    return std::nullopt;
}

ClientMessage parse_client_message(std::string_view text) {
    json::error_code ec;
    json::parse_options options;
    options.max_depth = kMaxClientMessageDepth;
    auto value = json::parse(text, ec, {}, options);
    if (ec || !value.is_object()) return invalid(LiveError::bad_message, "expected a JSON object");
    const auto& object = value.as_object();
    const auto* type = object.if_contains("type");
    if (!type || !type->is_string())
        return invalid(LiveError::bad_message, "\"type\" must be a string");
    std::string_view kind = type->as_string();

    ClientMessage message;
    if (kind == "ping") {
        message.kind = ClientMessage::Kind::ping;
        return message;
    }
    if (kind == "resume") {
        const auto* since = object.if_contains("since");
        auto seq = since ? seq_of(*since) : std::nullopt;
        if (!seq)
            return invalid(LiveError::bad_message, "\"since\" must be a non-negative integer");
        message.since = *seq;
        if (const auto* epoch = object.if_contains("epoch"); epoch && !epoch->is_null()) {
            if (!epoch->is_string())
                return invalid(LiveError::bad_message, "\"epoch\" must be a string");
            message.epoch = std::string(epoch->as_string());
        }
        message.kind = ClientMessage::Kind::resume;
        return message;
    }
    if (kind == "subscribe" || kind == "unsubscribe") {
        const auto* job = object.if_contains("job");
        const bool id_like = job && (job->is_int64() || job->is_uint64() ||
                                     (job->is_string() && !job->as_string().empty()));
        if (!id_like) return invalid(LiveError::bad_message, "\"job\" must be a job id");
        if (kind == "subscribe") {
            const auto* items = object.if_contains("items");
            if (!items || !items->is_bool() || !items->get_bool())
                return invalid(LiveError::bad_message, "\"items\" must be true");
        }
        message.kind =
            kind == "subscribe" ? ClientMessage::Kind::subscribe : ClientMessage::Kind::unsubscribe;
        message.job = *job;
        return message;
    }
    return invalid(LiveError::unknown_type, "unknown message type");
}

}  // namespace litchi::server
