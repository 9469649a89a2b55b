#include "cli/progress_view.hpp"

#include <unistd.h>

#include <cmath>
#include <string_view>

namespace litchi::cli {

bool parse_progress_mode(const std::string& text, std::FILE* stream, ProgressMode& out) {
    if (text == "auto")
        out = ::isatty(::fileno(stream)) ? ProgressMode::bar : ProgressMode::none;
    else if (text == "bar")
        out = ProgressMode::bar;
    else if (text == "json")
        out = ProgressMode::json;
    else if (text == "none")
        out = ProgressMode::none;
    else
        return false;
    return true;
}

ProgressView::ProgressView(ProgressMode mode, std::FILE* out)
    : mode_(mode), out_(out), min_interval_(mode == ProgressMode::json ? 500 : 100) {}

void ProgressView::sample(const ProgressCounts& c) {
    auto now = Clock::now();
    window_.push_back({now, c.done + c.failed, c.bytes});
    // Five seconds of history: long enough to be steady, short enough to follow changes.
    while (window_.size() > 2 && now - window_.front().at > std::chrono::seconds(5))
        window_.pop_front();
    const auto& first = window_.front();
    double dt = std::chrono::duration<double>(now - first.at).count();
    if (dt > 0.2) {
        item_rate_ = double(window_.back().items - first.items) / dt;
        byte_rate_ = double(window_.back().bytes - first.bytes) / dt;
    }
}

double ProgressView::eta_seconds(const ProgressCounts& c) const {
    std::uint64_t finished = c.done + c.failed;
    if (finished >= c.total) return 0;
    if (item_rate_ <= 0) return -1;
    return double(c.total - finished) / item_rate_;
}

std::string ProgressView::format_bytes(double b) {
    const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (b >= 1024 && u < 4) {
        b /= 1024;
        ++u;
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", b, units[u]);
    return buf;
}

std::string ProgressView::format_duration(double s) {
    if (s < 0 || !std::isfinite(s)) return "--:--";
    long total = long(s + 0.5);
    char buf[32];
    if (total >= 3600)
        std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", total / 3600, (total / 60) % 60,
                      total % 60);
    else
        std::snprintf(buf, sizeof buf, "%ld:%02ld", total / 60, total % 60);
    return buf;
}

void ProgressView::update(const ProgressCounts& c, bool force) {
    if (mode_ == ProgressMode::none) return;
    auto now = Clock::now();
    if (!force && now - last_draw_ < min_interval_) return;
    last_draw_ = now;
    sample(c);
    draw(c);
}

void ProgressView::finish(const ProgressCounts& c) {
    if (mode_ == ProgressMode::none) return;
    sample(c);
    draw(c);
    if (mode_ == ProgressMode::bar) std::fputc('\n', out_);
    std::fflush(out_);
}

void ProgressView::draw(const ProgressCounts& c) {
    double elapsed = std::chrono::duration<double>(Clock::now() - start_).count();
    double eta = eta_seconds(c);
    if (mode_ == ProgressMode::json) {
        std::fprintf(
            out_,
            "{\"type\":\"progress\",\"total\":%llu,\"done\":%llu,\"failed\":%llu,\"bytes\":%llu,"
            "\"rate\":%.1f,\"bytes_per_s\":%.0f,\"eta\":%s,\"elapsed\":%.2f}\n",
            (unsigned long long)c.total, (unsigned long long)c.done, (unsigned long long)c.failed,
            (unsigned long long)c.bytes, item_rate_, byte_rate_,
            eta < 0 ? "null" : std::to_string(std::lround(eta)).c_str(), elapsed);
        std::fflush(out_);
        return;
    }
    constexpr int kWidth = 28;
    double frac = c.total ? double(c.done + c.failed) / double(c.total) : 1.0;
    int filled = int(frac * kWidth);
    std::string bar(std::size_t(filled), '#');
    bar.append(std::size_t(kWidth - filled), '.');
    std::fprintf(out_, "\r\x1b[2K[%s] %3d%%  %llu/%llu done", bar.c_str(), int(frac * 100),
                 (unsigned long long)c.done, (unsigned long long)c.total);
    if (c.failed) std::fprintf(out_, ", %llu failed", (unsigned long long)c.failed);
    std::fprintf(out_, "  %s  %.0f img/s  %s/s  ETA %s", format_bytes(double(c.bytes)).c_str(),
                 item_rate_, format_bytes(byte_rate_).c_str(), format_duration(eta).c_str());
    std::fflush(out_);
}

}  // namespace litchi::cli
