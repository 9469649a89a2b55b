// See api.hpp.
#include "server/api.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>
#include <charconv>

#include "blobs/blob_store.hpp"
#include "fetch/url_check.hpp"
#include "jobs/admission.hpp"
#include "server/api_error.hpp"
#include "server/auth.hpp"
#include "server/body_streams.hpp"
#include "server/event_wiring.hpp"
#include "server/job_body.hpp"
#include "server/json.hpp"
#include "server/openapi.hpp"
#include "server/server_state.hpp"

namespace litchi::server {

namespace json = boost::json;

namespace {

// The server's --per-host-rate (0: none), the bound of a job's per_host_rate.
double server_per_host_rate(const FetchLimits& limits) {
    return limits.per_host_rate;
}

StringResponse job_not_found() {
    return error_response(ApiError::not_found, "no such job");
}

// "application/json; charset=utf-8" -> "application/json"
std::string media_type(const Request& req) {
    auto value = req[http::field::content_type];
    return ascii_lower(trim_header_value(value.substr(0, value.find(';'))));
}

template <class Int>
std::optional<Int> parse_number(std::string_view text) {
    Int value{};
    if (text.empty() || text.size() > 18) return std::nullopt;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
    return value;
}

std::optional<JobId> job_id_param(const RequestContext& ctx) {
    if (ctx.params.empty()) return std::nullopt;
    auto id = parse_number<JobId>(ctx.params[0]);
    if (!id || *id <= 0) return std::nullopt;
    return id;
}

bool is_sha256_hex(std::string_view text) {
    return text.size() == 64 && std::all_of(text.begin(), text.end(), [](char c) {
               return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
           });
}

StringResponse job_response(http::status status, const JobSnapshot& job) {
    return json_response(status, job_to_json(job));
}

Reply job_op_reply(const JobOpResult& result, std::string_view action) {
    switch (result.status) {
        case JobOpStatus::ok:
            return job_response(http::status::ok, *result.job);
        case JobOpStatus::conflict:
            return error_response(
                ApiError::conflict,
                fmt::format("cannot {} a job that is {}", action,
                            result.job ? to_string(result.job->state) : "in this state"));
        case JobOpStatus::not_found:
            break;
    }
    return job_not_found();
}

// If-None-Match holds this ETag (or "*")?
bool etag_matches(const Request& req, std::string_view etag) {
    auto header = req[http::field::if_none_match];
    if (header.empty()) return false;
    if (trim_header_value(header) == "*") return true;
    while (!header.empty()) {
        auto comma = header.find(',');
        auto candidate = trim_header_value(header.substr(0, comma));
        if (candidate.starts_with("W/")) candidate.remove_prefix(2);
        if (candidate == etag) return true;
        if (comma == std::string_view::npos) break;
        header.remove_prefix(comma + 1);
    }
    return false;
}

void set_image_headers(http::response_header<>& res, std::string_view etag,
                       std::string_view content_type) {
    res.set(http::field::etag, etag);
    // Per-user content: browsers may keep it forever, shared caches may not.
    res.set(http::field::cache_control, "private, max-age=31536000, immutable");
    res.set("X-Content-Type-Options", "nosniff");
    res.set("Content-Security-Policy", "default-src 'none'; sandbox");
    if (!content_type.empty()) res.set(http::field::content_type, content_type);
}

// The head of a download the browser saves as `filename` (a job's manifest or zip).
StreamResponse attachment(std::string_view content_type, const std::string& filename) {
    StreamResponse res;
    res.head.result(http::status::ok);
    res.head.set(http::field::content_type, content_type);
    res.head.set(http::field::content_disposition,
                 fmt::format("attachment; filename=\"{}\"", filename));
    res.head.set(http::field::cache_control, "no-store");
    return res;
}

// A request's JSON object body into `out`; the refusal otherwise (415 for
// another media type, 400 for what is not a JSON object).
std::optional<StringResponse> read_object_body(const Request& req, json::object& out) {
    if (media_type(req) != "application/json") {
        return error_response(ApiError::unsupported_media_type,
                              "send the body as application/json");
    }
    json::error_code ec;
    auto body = json::parse(req.body(), ec);
    if (ec || !body.is_object()) {
        return error_response(ApiError::malformed_json, "the body must be a JSON object");
    }
    out = std::move(body.as_object());
    return std::nullopt;
}

// Leading and trailing ASCII white space off.
std::string_view trim_spaces(std::string_view text) {
    auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
    while (!text.empty() && space(text.front())) text.remove_prefix(1);
    while (!text.empty() && space(text.back())) text.remove_suffix(1);
    return text;
}

// A token as its owner sees it in GET /api/tokens: never the secret.
json::object token_to_json(const TokenRecord& token, TokenId current) {
    json::object out{{"id", token.id},
                     {"kind", to_string(token.kind)},
                     {"created", token.created},
                     {"last_used", token.last_used ? json::value(*token.last_used) : nullptr},
                     {"current", token.id == current}};
    if (!token.name.empty()) out["name"] = token.name;
    if (token.expires) out["expires"] = *token.expires;
    return out;
}

// A new session: its token in the body (for non-browser clients) and in the cookie.
StringResponse session_reply(const IssuedToken& issued, const std::string& user) {
    long max_age =
        issued.record.expires ? static_cast<long>((*issued.record.expires - now_ms()) / 1000) : 0;
    auto res =
        json_response(http::status::ok, json::object{{"token", issued.token}, {"user", user}});
    res.set(http::field::set_cookie, session_cookie(issued.token, max_age));
    return res;
}

}  // namespace

Api::Api(ServerState& state, Store& store, JobService& jobs, Scheduler& scheduler, BlobStore& blobs,
         ThumbnailCache& thumbs)
    : state_(state),
      store_(store),
      jobs_(jobs),
      scheduler_(scheduler),
      blobs_(blobs),
      thumbs_(thumbs),
      login_limiter_(state.config().http.login_attempts_per_window,
                     state.config().http.login_window, state.config().http.login_tracked_clients),
      account_throttle_(
          AccountThrottleLimits{.free_failures = state.config().http.login_account_free,
                                .base_delay = state.config().http.login_account_delay,
                                .max_delay = state.config().http.login_account_max_delay,
                                .quiet_reset = state.config().http.login_window * 2,
                                .max_accounts = state.config().http.login_tracked_clients}) {}

Router::Handler Api::authed(AuthedHandler handler) {
    return [this, handler](RequestContext& ctx) -> Reply {
        // Judged already when the session read the header (a request with a body).
        if (ctx.auth) return (this->*handler)(ctx, *ctx.auth);
        auto verdict = judge_request(store_.users(), ctx.req, state_.config().allowed_origins);
        if (verdict.refusal) return std::move(*verdict.refusal);
        return (this->*handler)(ctx, *verdict.auth);
    };
}

void Api::register_routes(Router& router) {
    using http::verb;
    auto plain = [this](Reply (Api::*handler)(RequestContext&)) {
        return [this, handler](RequestContext& ctx) { return (this->*handler)(ctx); };
    };
    auto w = Placement::worker;
    const auto& limits = state_.config().http;
    // On a worker: asking the database (cluster mode) blocks for a moment.
    router.add(verb::get, "/healthz", w, plain(&Api::healthz));
    router.add(verb::get, "/metrics", w, plain(&Api::metrics));
    router.add(verb::post, "/api/login", w, plain(&Api::login));
    // A constant in memory: answered on the socket's thread.
    router.add(verb::get, "/api/openapi.json", Placement::io, plain(&Api::openapi));
    // Routes for a user: credentials judged on the header (Access::user).
    auto user = [&](verb method, std::string_view pattern, AuthedHandler handler,
                    std::optional<std::uint64_t> body_limit = std::nullopt,
                    Placement placement = Placement::worker) {
        router.add(method, pattern, placement, authed(handler), body_limit, Access::user);
    };
    user(verb::post, "/api/logout", &Api::logout);
    user(verb::get, "/api/me", &Api::me);
    user(verb::post, "/api/me/password", &Api::change_password);
    user(verb::get, "/api/tokens", &Api::list_tokens);
    user(verb::post, "/api/tokens", &Api::create_token);
    user(verb::delete_, "/api/tokens/{}", &Api::revoke_token);
    // The one route that takes a large body: the URL list (--max-body).
    user(verb::post, "/api/jobs", &Api::create_job, limits.max_job_body_bytes);
    user(verb::get, "/api/jobs", &Api::list_jobs);
    user(verb::get, "/api/jobs/{}", &Api::get_job);
    user(verb::delete_, "/api/jobs/{}", &Api::delete_job);
    user(verb::patch, "/api/jobs/{}", &Api::rename_job);
    user(verb::get, "/api/jobs/{}/items", &Api::list_items);
    user(verb::get, "/api/jobs/{}/progress", &Api::progress);
    user(verb::post, "/api/jobs/{}/pause", &Api::pause_job);
    user(verb::post, "/api/jobs/{}/resume", &Api::resume_job);
    user(verb::post, "/api/jobs/{}/cancel", &Api::cancel_job);
    user(verb::post, "/api/jobs/{}/retry", &Api::retry_job);
    user(verb::get, "/api/jobs/{}/manifest.jsonl", &Api::manifest);
    user(verb::get, "/api/jobs/{}/archive.zip", &Api::archive);
    // Its own pool: a burst of thumbnails must not slow the rest of the API.
    user(verb::get, "/api/images/{}", &Api::image, std::nullopt, Placement::images);
}

Reply Api::login(RequestContext& ctx) {
    if (media_type(ctx.req) != "application/json") {
        return error_response(ApiError::unsupported_media_type,
                              "send the credentials as application/json");
    }
    json::error_code ec;
    auto body = json::parse(ctx.req.body(), ec);
    if (ec || !body.is_object()) {
        return error_response(ApiError::malformed_json, "the body must be a JSON object");
    }
    const auto& object = body.as_object();

    // The one-time login link: used up here, swapped for a new session.
    if (auto token_field = object.if_contains("token")) {
        if (!token_field->is_string()) {
            return error_response(ApiError::invalid_body, "\"token\" must be a string");
        }
        auto issued = store_.users().exchange_link(std::string_view(token_field->as_string()));
        if (!issued) {
            return error_response(ApiError::invalid_credentials,
                                  "this sign-in link is invalid, expired or already used");
        }
        auto user = store_.users().find_user(issued->record.user);
        if (!user) return error_response(ApiError::invalid_credentials, "no such user");
        return session_reply(*issued, user->name);
    }

    // Before any hashing: the limit exists to cap what a client can make us
    // spend (argon2). A link exchange above costs a SHA-256 and a lookup,
    // and its 256-bit token cannot be guessed: not counted.
    if (auto wait = login_limiter_.try_acquire(ctx.client_ip)) {
        auto res =
            error_response(ApiError::rate_limited, "too many login attempts; try again later");
        res.set(http::field::retry_after, std::to_string(wait));
        return res;
    }
    auto username = object.if_contains("username");
    auto password = object.if_contains("password");
    if (!username || !password || !username->is_string() || !password->is_string()) {
        return error_response(ApiError::invalid_body,
                              "expected {\"username\": string, \"password\": string}");
    }
    std::string_view name = username->as_string();
    // Many source addresses guessing one account share this limit. Before
    // the hash, like the per-IP one.
    if (auto wait = account_throttle_.try_acquire(name)) {
        auto res = error_response(ApiError::rate_limited,
                                  "too many failed logins for this account; try again later");
        res.set(http::field::retry_after, std::to_string(wait));
        return res;
    }
    std::optional<UserRecord> user;
    try {
        user = store_.users().verify_password(name, std::string_view(password->as_string()));
    } catch (...) {
        account_throttle_.abandoned(name);  // no answer: not counted either way
        throw;
    }
    if (!user) {
        account_throttle_.failed(name);
        return error_response(ApiError::invalid_credentials, "wrong user name or password");
    }
    account_throttle_.succeeded(name);
    return session_reply(store_.users().create_token(user->id, TokenKind::session), user->name);
}

Reply Api::logout(RequestContext& ctx, const Authenticated& auth) {
    store_.users().revoke_token(auth.user.id, auth.token_id);
    // Sockets opened with this token close now (1008), not at the next sweep.
    if (const auto& events = state_.events()) events->credential_revoked(auth.token_id);
    StringResponse res{http::status::no_content, ctx.req.version()};
    res.set(http::field::set_cookie, session_cookie("", 0));
    res.set(http::field::cache_control, "no-store");
    return res;
}

Reply Api::me(RequestContext&, const Authenticated& auth) {
    // How this request is signed in: a session (a sign-in, usually the
    // cookie) or an API token; `token_id` is its entry in GET /api/tokens.
    return json_response(http::status::ok,
                         json::object{{"id", auth.user.id},
                                      {"name", auth.user.name},
                                      {"session", auth.kind == TokenKind::session},
                                      {"token_kind", to_string(auth.kind)},
                                      {"token_id", auth.token_id}});
}

Reply Api::change_password(RequestContext& ctx, const Authenticated& auth) {
    json::object body;
    if (auto refusal = read_object_body(ctx.req, body)) return std::move(*refusal);
    auto current = body.if_contains("current");
    auto next = body.if_contains("new");
    if (!current || !next || !current->is_string() || !next->is_string()) {
        return error_response(ApiError::invalid_body,
                              "expected {\"current\": string, \"new\": string}");
    }
    const UserLimits limits{};
    std::string_view new_password = next->as_string();
    if (new_password.size() < limits.min_password_length ||
        new_password.size() > limits.max_password_length) {
        return error_response(
            ApiError::invalid_body,
            "the new password is too short or too long: " + describe_password_limits(limits));
    }
    // The same throttles as POST /api/login: this is a password guess too.
    if (auto wait = login_limiter_.try_acquire(ctx.client_ip)) {
        auto res = error_response(ApiError::rate_limited, "too many attempts; try again later");
        res.set(http::field::retry_after, std::to_string(wait));
        return res;
    }
    const std::string& name = auth.user.name;
    if (auto wait = account_throttle_.try_acquire(name)) {
        auto res = error_response(ApiError::rate_limited,
                                  "too many failed attempts for this account; try again later");
        res.set(http::field::retry_after, std::to_string(wait));
        return res;
    }
    std::optional<UserRecord> verified;
    try {
        verified = store_.users().verify_password(name, std::string_view(current->as_string()));
    } catch (...) {
        account_throttle_.abandoned(name);
        throw;
    }
    if (!verified) {
        account_throttle_.failed(name);
        return error_response(ApiError::wrong_password, "the current password is wrong");
    }
    account_throttle_.succeeded(name);
    if (auto error = store_.users().set_password(auth.user.id, new_password);
        error != UserError::none) {
        return error_response(
            error == UserError::not_found ? ApiError::not_found : ApiError::invalid_body,
            std::string(to_string(error)));
    }
    StringResponse res{http::status::no_content, ctx.req.version()};
    res.set(http::field::cache_control, "no-store");
    return res;
}

Reply Api::list_tokens(RequestContext&, const Authenticated& auth) {
    json::array tokens;
    for (const auto& token : store_.users().list_tokens(auth.user.id)) {
        // Only the usable ones: a revoked or expired token is history.
        if (token.revoked || (token.expires && *token.expires <= now_ms())) continue;
        if (token.kind == TokenKind::link) continue;  // not a credential (user_store.hpp)
        tokens.push_back(token_to_json(token, auth.token_id));
    }
    auto res = json_response(http::status::ok, json::object{{"tokens", std::move(tokens)}});
    res.set(http::field::cache_control, "no-store");
    return res;
}

Reply Api::create_token(RequestContext& ctx, const Authenticated& auth) {
    std::string name;
    if (!ctx.req.body().empty()) {
        json::object body;
        if (auto refusal = read_object_body(ctx.req, body)) return std::move(*refusal);
        if (auto field = body.if_contains("name"); field && !field->is_null()) {
            if (!field->is_string())
                return error_response(ApiError::invalid_body, "\"name\" must be a string");
            name = std::string(trim_spaces(field->as_string()));
            if (name.size() > kMaxTokenNameBytes) {
                return error_response(
                    ApiError::invalid_body,
                    fmt::format("the name is longer than {} bytes", kMaxTokenNameBytes));
            }
        }
    }
    auto issued = store_.users().create_token(auth.user.id, TokenKind::api, std::nullopt, name);
    auto body = token_to_json(issued.record, auth.token_id);
    body["token"] = issued.token;  // shown this once
    auto res = json_response(http::status::created, body);
    res.set(http::field::cache_control, "no-store");
    return res;
}

Reply Api::revoke_token(RequestContext& ctx, const Authenticated& auth) {
    auto id = ctx.params.empty() ? std::nullopt : parse_number<TokenId>(ctx.params[0]);
    if (!id || *id <= 0 || !store_.users().revoke_token(auth.user.id, *id)) {
        return error_response(ApiError::not_found, "no such token");
    }
    // Its sockets close now (1008), as at logout.
    if (const auto& events = state_.events()) events->credential_revoked(*id);
    StringResponse res{http::status::no_content, ctx.req.version()};
    res.set(http::field::cache_control, "no-store");
    // Revoking the session this very request came with signs it out.
    if (*id == auth.token_id) res.set(http::field::set_cookie, session_cookie("", 0));
    return res;
}

Reply Api::create_job(RequestContext& ctx, const Authenticated& auth) {
    const auto& limits = state_.config().http;
    const auto type = media_type(ctx.req);
    const auto name = type == "text/plain" ? ctx.query("name").value_or("") : std::string();
    JobBody body;
    if (auto error = read_job_body(type, ctx.req.body(), name,
                                   {limits.max_urls_per_job, limits.max_job_name_bytes}, body)) {
        return error_response(error->error, error->message);
    }

    // What needs the server's limits: only tighter limits, a webhook the
    // SSRF guard lets through (a name is judged again at connect time).
    const auto& fetch = state_.config().fetch;
    if (auto why = check_tighter(body.options.limits, fetch, server_per_host_rate(fetch));
        !why.empty()) {
        return error_response(ApiError::limit_too_loose, why);
    }
    if (body.options.webhook) {
        auto checked = check_url(body.options.webhook->url, fetch);
        if (!checked.ok) {
            return error_response(ApiError::bad_webhook,
                                  fmt::format("the webhook URL is refused ({}): {}",
                                              to_string(checked.reason), checked.detail));
        }
        body.options.webhook->url = checked.url;
    }

    auto job = jobs_.create_job({.user = auth.user.id,
                                 .name = body.name,
                                 .urls = std::move(body.urls),
                                 .options = std::move(body.options)});
    auto res = job_response_with_options(http::status::created, job, body.duplicates);
    res.set(http::field::location, fmt::format("/api/jobs/{}", job.id));
    return res;
}

Reply Api::list_jobs(RequestContext&, const Authenticated& auth) {
    json::array jobs;
    for (const auto& job : jobs_.list_jobs(auth.user.id)) jobs.push_back(job_to_json(job));
    return json_response(http::status::ok, json::object{{"jobs", std::move(jobs)}});
}

std::optional<JobSnapshot> Api::path_job(const RequestContext& ctx, const Authenticated& auth) {
    auto id = job_id_param(ctx);
    if (!id) return std::nullopt;
    return jobs_.get_job(auth.user.id, *id);
}

Reply Api::get_job(RequestContext& ctx, const Authenticated& auth) {
    auto job = path_job(ctx, auth);
    if (!job) return job_not_found();
    return job_response_with_options(http::status::ok, *job);
}

StringResponse Api::job_response_with_options(http::status status, const JobSnapshot& job,
                                              std::optional<std::size_t> duplicates) {
    auto object = job_to_json(job);
    if (duplicates) object["duplicates"] = *duplicates;  // dropped by the list rule, reported
    auto& store = jobs_.store();
    if (auto options = store.request_options(job.id); options && !options->empty()) {
        std::optional<WebhookDelivery> last;
        if (options->webhook) last = store.last_webhook(job.id);
        add_request_options(object, *options, last);
    }
    return json_response(status, std::move(object));
}

Reply Api::list_items(RequestContext& ctx, const Authenticated& auth) {
    auto id = job_id_param(ctx);
    if (!id) return job_not_found();
    const auto& limits = state_.config().http;
    ItemQuery query;
    query.limit = static_cast<int>(limits.items_page_default);
    if (auto state = ctx.query("state"); state && !state->empty()) {
        query.state = parse_item_state(*state);
        if (!query.state) {
            return error_response(ApiError::bad_query,
                                  "state must be one of queued, active, done, failed, cancelled");
        }
    }
    if (auto after = ctx.query("after"); after && !after->empty()) {
        auto value = parse_number<ItemId>(*after);
        if (!value || *value < 0)
            return error_response(ApiError::bad_query, "after must be an item id");
        query.after = *value;
    }
    if (auto limit = ctx.query("limit"); limit && !limit->empty()) {
        auto value = parse_number<int>(*limit);
        if (!value || *value < 1 || static_cast<std::size_t>(*value) > limits.items_page_max) {
            return error_response(ApiError::bad_query,
                                  fmt::format("limit must be 1..{}", limits.items_page_max));
        }
        query.limit = *value;
    }
    auto page = store_.jobs().list_items(auth.user.id, *id, query);
    if (!page) return job_not_found();
    json::array items;
    for (const auto& item : page->items) items.push_back(item_to_json(item));
    json::object body{{"items", std::move(items)}};
    if (page->next) body["next"] = *page->next;
    return json_response(http::status::ok, body);
}

Reply Api::progress(RequestContext& ctx, const Authenticated& auth) {
    auto job = path_job(ctx, auth);
    if (!job) return job_not_found();
    // The socket's progress message without a seq: polled state comes straight
    // from the store and is not part of the event stream (docs/protocol.md §9).
    return json_response(http::status::ok,
                         json::object{{"type", "progress"}, {"job", job_to_json(*job)}});
}

Reply Api::pause_job(RequestContext& ctx, const Authenticated& auth) {
    auto id = job_id_param(ctx);
    return id ? job_op_reply(jobs_.pause_job(auth.user.id, *id), "pause") : job_not_found();
}

Reply Api::resume_job(RequestContext& ctx, const Authenticated& auth) {
    auto id = job_id_param(ctx);
    return id ? job_op_reply(jobs_.resume_job(auth.user.id, *id), "resume") : job_not_found();
}

Reply Api::cancel_job(RequestContext& ctx, const Authenticated& auth) {
    auto id = job_id_param(ctx);
    return id ? job_op_reply(jobs_.cancel_job(auth.user.id, *id), "cancel") : job_not_found();
}

Reply Api::retry_job(RequestContext& ctx, const Authenticated& auth) {
    auto id = job_id_param(ctx);
    if (!id) return job_not_found();
    // No body: the transient reasons. {"reasons": [...]}: exactly those.
    auto which = RetrySelection::transient();
    if (!ctx.req.body().empty()) {
        json::object body;
        if (auto refusal = read_object_body(ctx.req, body)) return std::move(*refusal);
        if (auto reasons = body.if_contains("reasons"); reasons && !reasons->is_null()) {
            if (!reasons->is_array() || reasons->as_array().empty()) {
                return error_response(ApiError::invalid_body,
                                      "\"reasons\" must be a non-empty array of failure reasons");
            }
            which = RetrySelection{};
            for (const auto& value : reasons->as_array()) {
                auto reason =
                    value.is_string() ? parse_failure_reason(value.as_string()) : std::nullopt;
                if (!reason || *reason == FailureReason::none ||
                    *reason == FailureReason::cancelled) {
                    return error_response(
                        ApiError::invalid_body,
                        fmt::format("unknown failure reason {}", json::serialize(value)));
                }
                which.reasons.push_back(*reason);
            }
        }
    }
    auto result = jobs_.retry_job(auth.user.id, *id, which);
    if (result.status != JobOpStatus::ok) return job_op_reply(result, "retry");
    auto body = job_to_json(*result.job);
    body["requeued"] = result.requeued;
    return json_response(http::status::ok, body);
}

Reply Api::rename_job(RequestContext& ctx, const Authenticated& auth) {
    auto id = job_id_param(ctx);
    if (!id) return job_not_found();
    json::object body;
    if (auto refusal = read_object_body(ctx.req, body)) return std::move(*refusal);
    auto field = body.if_contains("name");
    if (!field || !field->is_string())
        return error_response(ApiError::invalid_body, "expected {\"name\": string}");
    auto name = trim_spaces(field->as_string());
    const auto& limits = state_.config().http;
    if (name.empty()) return error_response(ApiError::invalid_body, "the name is empty");
    if (name.size() > limits.max_job_name_bytes) {
        return error_response(
            ApiError::invalid_body,
            fmt::format("the name is longer than {} bytes", limits.max_job_name_bytes));
    }
    return job_op_reply(jobs_.rename_job(auth.user.id, *id, name), "rename");
}

Reply Api::delete_job(RequestContext& ctx, const Authenticated& auth) {
    auto id = job_id_param(ctx);
    if (!id) return job_not_found();
    auto result = jobs_.delete_job(auth.user.id, *id);
    if (result.status != JobOpStatus::ok) return job_op_reply(result, "delete");
    for (const auto& blob : result.unreferenced) thumbs_.remove(blob.sha256);
    StringResponse res{http::status::no_content, ctx.req.version()};
    res.set(http::field::cache_control, "no-store");
    return res;
}

Reply Api::manifest(RequestContext& ctx, const Authenticated& auth) {
    auto job = path_job(ctx, auth);
    if (!job) return job_not_found();
    StreamResponse res =
        attachment("application/x-ndjson; charset=utf-8", fmt::format("job-{}.jsonl", job->id));
    const auto& limits = state_.config().http;
    res.body =
        std::make_shared<ManifestStream>(state_.workers(), store_.jobs(), auth.user.id, job->id,
                                         limits.stream_piece_bytes, limits.stream_item_page);
    return res;
}

Reply Api::archive(RequestContext& ctx, const Authenticated& auth) {
    auto job = path_job(ctx, auth);
    if (!job) return job_not_found();
    auto names = ArchiveNames::sha256;
    if (auto style = ctx.query("names"); style && !style->empty()) {
        if (*style == "url")
            names = ArchiveNames::url;
        else if (*style != "sha256")
            return error_response(ApiError::bad_query, "names must be sha256 or url");
    }
    StreamResponse res = attachment("application/zip", fmt::format("job-{}.zip", job->id));
    const auto& limits = state_.config().http;
    res.body =
        std::make_shared<ZipStream>(state_.workers(), store_.jobs(), blobs_, auth.user.id, job->id,
                                    limits.stream_piece_bytes, limits.stream_item_page, names);
    return res;
}

Reply Api::image(RequestContext& ctx, const Authenticated& auth) {
    const std::string& sha256 = ctx.params.at(0);
    auto not_found = [] { return error_response(ApiError::not_found, "no such image"); };
    if (!is_sha256_hex(sha256)) return not_found();

    std::optional<int> thumb;
    if (auto text = ctx.query("thumb")) {
        const auto& limits = state_.config().http;
        thumb = parse_number<int>(*text);
        if (!thumb || *thumb < limits.thumb_min || *thumb > limits.thumb_max) {
            return error_response(
                ApiError::bad_thumb_size,
                fmt::format("thumb must be {}..{}", limits.thumb_min, limits.thumb_max));
        }
        thumb = snap_thumbnail_size(*thumb);
    }
    auto format = store_.jobs().find_user_blob(auth.user.id, sha256);
    if (!format) return not_found();

    std::string etag =
        thumb ? fmt::format("\"{}-t{}\"", sha256, *thumb) : fmt::format("\"{}\"", sha256);
    if (etag_matches(ctx.req, etag)) {
        StringResponse res{http::status::not_modified, ctx.req.version()};
        set_image_headers(res.base(), etag, {});
        return res;
    }

    auto path = blobs_.absolute_path(sha256, *format);
    std::string_view content_type = mime_type(*format);
    if (thumb) {
        path = thumbs_.get(sha256, path, *thumb);
        content_type = kThumbnailContentType;
    }
    http::file_body::value_type body;
    beast::error_code ec;
    body.open(path.c_str(), beast::file_mode::scan, ec);
    if (ec) {
        spdlog::error("image {} is referenced but its file cannot be opened: {}", sha256,
                      ec.message());
        return not_found();
    }
    FileResponse res{http::status::ok, ctx.req.version()};
    set_image_headers(res.base(), etag, content_type);
    res.body() = std::move(body);
    res.prepare_payload();
    return res;
}

Reply Api::openapi(RequestContext&) {
    // The file as it is (docs/openapi.json), not re-serialised: what a
    // reviewer read is what a client gets.
    StringResponse res{http::status::ok, 11};
    res.set(http::field::content_type, "application/json");
    res.set(http::field::cache_control, "no-store");
    res.body() = std::string(openapi_document());
    res.prepare_payload();
    return res;
}

Reply Api::healthz(RequestContext&) {
    // Degraded, not down: a node whose database is unreachable keeps its
    // sockets and results and carries on once it is back; a load balancer
    // may still prefer another node meanwhile (503).
    StoreHealth health = store_.health();
    const auto& events = state_.events();
    if (health.ok && events && !events->log_healthy()) {
        health = {false, "the event log cannot be read"};
    }
    // The store refuses writes (a full disk): results are kept and retried,
    // and their items stay active until it takes them. Say so.
    if (auto pending = scheduler_.stats().pending_results; health.ok && pending > 0) {
        health = {false, fmt::format("{} download results wait to be stored (the database "
                                     "refuses writes: is the disk full?); retried every few "
                                     "seconds",
                                     pending)};
    }
    json::object body{{"status", health.ok ? "ok" : "degraded"}};
    body["node"] = state_.config().node;
    if (!health.ok) body["store"] = health.detail;
    return json_response(health.ok ? http::status::ok : http::status::service_unavailable,
                         std::move(body));
}

Reply Api::metrics(RequestContext&) {
    auto stats = scheduler_.stats();
    DownloadFigures figures;
    figures.done = stats.done;
    figures.cancelled = stats.cancelled;
    figures.fenced = stats.fenced;
    for (std::size_t i = 0;
         i < figures.failed_by_reason.size() && i < stats.failed_by_reason.size(); ++i) {
        figures.failed_by_reason[i] = stats.failed_by_reason[i];
    }
    figures.stored_bytes = stats.bytes;
    figures.received_bytes = stats.engine.bytes_received;
    figures.queue_depth = stats.queued;
    figures.node = state_.config().node;
    figures.leased_total = stats.leased_total;
    figures.node_leased = stats.in_flight;
    figures.in_flight = stats.in_flight;
    figures.active_transfers = stats.engine.active;
    figures.probing = stats.engine.probing;
    figures.parked = stats.engine.waiting;
    figures.preempted = stats.engine.preempted;

    StringResponse res{http::status::ok, 11};
    res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
    res.set(http::field::cache_control, "no-store");
    BodyFigures bodies{state_.body_budget().used(), state_.body_budget().capacity()};
    res.body() = state_.metrics().render(figures, bodies);
    if (const auto& events = state_.events()) res.body() += events->render_metrics();
    res.prepare_payload();
    return res;
}

}  // namespace litchi::server
