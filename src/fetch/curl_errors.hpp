// Every libcurl failure named in one place: which FailureReason (the shared
// vocabulary in core/reason.hpp) a CURLcode means for a transfer.
#pragma once

#include <curl/curl.h>

#include "core/reason.hpp"

namespace litchi {

struct Transfer;

// The reason a failed transfer ends with. A reason the transfer set itself
// (the body writer's abort_reason) wins over the code curl returned for it.
FailureReason classify_curl_error(const Transfer& t, CURLcode rc);

}  // namespace litchi
