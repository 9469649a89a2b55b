// The server's logger: spdlog to stderr through a sink that scrubs every
// line of token-shaped text (core/token_redaction.hpp) before it is written.
// One filter at the end of the pipe, so a subsystem that logs a URL, a
// request target or an error message from a client cannot leak a token by
// forgetting to redact it.
#pragma once

namespace litchi::server {

// Makes the redacting "litchi" logger the default one (once; later calls do nothing).
void use_redacting_logger();

}  // namespace litchi::server
