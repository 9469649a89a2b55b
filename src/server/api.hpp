// The JSON API of `litchi serve` (the table in docs/api.md): login and
// logout, jobs and their items, state changes, manifest and zip exports,
// images and thumbnails, /healthz and /metrics, and the OpenAPI document
// that describes all of them (GET /api/openapi.json). Every job, item and image
// lookup is scoped by the authenticated user; another user's id is a 404.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "jobs/job_service.hpp"
#include "jobs/scheduler.hpp"
#include "server/http_types.hpp"
#include "server/rate_limiter.hpp"
#include "server/router.hpp"
#include "server/thumbnails.hpp"
#include "store/store.hpp"

namespace litchi {
class BlobStore;
}

namespace litchi::server {

class ServerState;

class Api {
  public:
    Api(ServerState& state, Store& store, JobService& jobs, Scheduler& scheduler, BlobStore& blobs,
        ThumbnailCache& thumbs);

    void register_routes(Router& router);

  private:
    using AuthedHandler = Reply (Api::*)(RequestContext&, const Authenticated&);
    // Wraps a handler that needs a user: 401 without a valid token.
    Router::Handler authed(AuthedHandler handler);

    Reply login(RequestContext& ctx);
    Reply logout(RequestContext& ctx, const Authenticated& auth);
    Reply me(RequestContext& ctx, const Authenticated& auth);
    Reply change_password(RequestContext& ctx, const Authenticated& auth);
    Reply list_tokens(RequestContext& ctx, const Authenticated& auth);
    Reply create_token(RequestContext& ctx, const Authenticated& auth);
    Reply revoke_token(RequestContext& ctx, const Authenticated& auth);
    Reply rename_job(RequestContext& ctx, const Authenticated& auth);
    Reply create_job(RequestContext& ctx, const Authenticated& auth);
    Reply list_jobs(RequestContext& ctx, const Authenticated& auth);
    Reply get_job(RequestContext& ctx, const Authenticated& auth);
    Reply list_items(RequestContext& ctx, const Authenticated& auth);
    Reply progress(RequestContext& ctx, const Authenticated& auth);
    Reply pause_job(RequestContext& ctx, const Authenticated& auth);
    Reply resume_job(RequestContext& ctx, const Authenticated& auth);
    Reply cancel_job(RequestContext& ctx, const Authenticated& auth);
    Reply retry_job(RequestContext& ctx, const Authenticated& auth);
    Reply delete_job(RequestContext& ctx, const Authenticated& auth);
    Reply manifest(RequestContext& ctx, const Authenticated& auth);
    Reply archive(RequestContext& ctx, const Authenticated& auth);
    Reply image(RequestContext& ctx, const Authenticated& auth);
    Reply metrics(RequestContext& ctx);
    Reply healthz(RequestContext& ctx);
    Reply openapi(RequestContext& ctx);

    // The job the path names, when it is this user's (anything else is a 404 to them).
    std::optional<JobSnapshot> path_job(const RequestContext& ctx, const Authenticated& auth);
    // The job object plus its request options and last webhook delivery.
    // The job object with its request options (credentials redacted) and last
    // webhook delivery; `duplicates` (creation only) reports the dropped lines.
    StringResponse job_response_with_options(http::status status, const JobSnapshot& job,
                                             std::optional<std::size_t> duplicates = {});

    ServerState& state_;
    Store& store_;
    JobService& jobs_;
    Scheduler& scheduler_;  // engine and queue figures for /metrics
    BlobStore& blobs_;
    ThumbnailCache& thumbs_;
    LoginRateLimiter login_limiter_;
    AccountLoginThrottle account_throttle_;
};

}  // namespace litchi::server
