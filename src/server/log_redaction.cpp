// See log_redaction.hpp.
#include "server/log_redaction.hpp"

#include <spdlog/sinks/sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <string>
#include <string_view>

#include "core/token_redaction.hpp"

namespace litchi::server {
namespace {

// Forwards each message to `inner_`, its payload redacted when it needs to be.
// The check is a scan for "lt_", so lines without one cost no copy.
class RedactingSink final : public spdlog::sinks::sink {
  public:
    explicit RedactingSink(spdlog::sink_ptr inner) : inner_(std::move(inner)) {}

    void log(const spdlog::details::log_msg& msg) override {
        std::string_view payload(msg.payload.data(), msg.payload.size());
        if (!contains_token_shape(payload)) return inner_->log(msg);
        std::string clean = redact_tokens(payload);
        spdlog::details::log_msg copy = msg;
        copy.payload = spdlog::string_view_t(clean.data(), clean.size());
        inner_->log(copy);
    }
    void flush() override { inner_->flush(); }
    void set_pattern(const std::string& pattern) override { inner_->set_pattern(pattern); }
    void set_formatter(std::unique_ptr<spdlog::formatter> formatter) override {
        inner_->set_formatter(std::move(formatter));
    }

  private:
    spdlog::sink_ptr inner_;
};

}  // namespace

void use_redacting_logger() {
    if (spdlog::get("litchi")) return;
    auto sink =
        std::make_shared<RedactingSink>(std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
    auto logger = std::make_shared<spdlog::logger>("litchi", std::move(sink));
    spdlog::register_logger(logger);
    spdlog::set_default_logger(std::move(logger));
}

}  // namespace litchi::server
