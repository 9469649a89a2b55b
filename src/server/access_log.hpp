// The access log: one line per request with method, target, status, bytes and
// duration. Targets are redacted first, so no token reaches a log: the
// /api/litchi/{token} WebSocket path, secret-looking query values and
// anything shaped like a token ("lt_...") wherever it sits.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace litchi::server {

// "/api/litchi/abc?x=1&token=s" -> "/api/litchi/[redacted]?x=1&token=[redacted]".
// Control characters become '?', so a target cannot forge log lines.
std::string redact_target(std::string_view target);

void log_access(std::string_view client_ip, std::string_view method, std::string_view target,
                unsigned status, std::uint64_t bytes, std::chrono::steady_clock::duration elapsed);

}  // namespace litchi::server
