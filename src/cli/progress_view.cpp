#include "cli/progress_view.hpp"

#include <signal.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <string_view>
#include <vector>

namespace litchi::cli {
namespace {

// Set by SIGWINCH: the next update redraws at once, at the new width.
std::atomic<bool> g_resized{false};

void on_resize(int) {
    g_resized.store(true);
}

std::string format_count(std::uint64_t n) {
    return std::to_string(n);
}

}  // namespace

int terminal_width(std::FILE* stream) {
    struct winsize size {};
    if (::ioctl(::fileno(stream), TIOCGWINSZ, &size) == 0 && size.ws_col > 0) return size.ws_col;
    if (const char* columns = std::getenv("COLUMNS")) {
        int value = std::atoi(columns);
        if (value > 0) return value;
    }
    return 80;
}

std::string render_bar_line(const ProgressCounts& c, const BarFigures& figures, int width) {
    const auto limit = static_cast<std::size_t>(std::max(width - 1, 1));
    std::uint64_t finished = c.done + c.failed + c.cancelled;
    double frac = c.total ? double(finished) / double(c.total) : 1.0;
    if (frac > 1) frac = 1;
    // Never 100 % while something is left.
    int percent = finished < c.total ? std::min(99, int(frac * 100)) : 100;

    std::string counts = format_count(c.done) + "/" + format_count(c.total) + " done";
    if (c.failed) counts += ", " + format_count(c.failed) + " failed";
    if (c.cancelled) counts += ", " + format_count(c.cancelled) + " cancelled";
    // Optional fields, most useful first; dropped from the end while too wide.
    std::vector<std::string> extras;
    extras.push_back("ETA " + ProgressView::format_duration(figures.eta));
    char rate[32];
    std::snprintf(rate, sizeof rate, "%.0f img/s", figures.item_rate);
    extras.push_back(rate);
    extras.push_back(ProgressView::format_bytes(double(c.bytes)));
    extras.push_back(ProgressView::format_bytes(figures.byte_rate) + "/s");

    char pct[16];  // "100%" at most; room for any int keeps -Wformat-truncation quiet
    std::snprintf(pct, sizeof pct, "%3d%%", percent);
    auto compose = [&](int bar_width, std::size_t extra_count) {
        std::string line;
        if (bar_width > 0) {
            int filled = int(frac * bar_width);
            line += "[" + std::string(std::size_t(filled), '#') +
                    std::string(std::size_t(bar_width - filled), '.') + "] ";
        }
        line += pct;
        line += "  " + counts;
        for (std::size_t i = 0; i < extra_count; ++i) line += "  " + extras[i];
        return line;
    };
    // Widest first: a full bar with everything, then a shorter bar, then
    // fewer fields, then no bar at all.
    for (std::size_t extra_count = extras.size() + 1; extra_count-- > 0;) {
        for (int bar_width : {28, 20, 10}) {
            auto line = compose(bar_width, extra_count);
            if (line.size() <= limit) return line;
        }
    }
    for (std::size_t extra_count = extras.size() + 1; extra_count-- > 0;) {
        auto line = compose(0, extra_count);
        if (line.size() <= limit) return line;
    }
    auto line = compose(0, 0);
    line.resize(limit);  // a very narrow terminal: cut, never wrap
    return line;
}

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
    : mode_(mode), out_(out), min_interval_(mode == ProgressMode::json ? 500 : 100) {
    if (mode_ == ProgressMode::bar) {
        struct sigaction sa {};
        sa.sa_handler = on_resize;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = SA_RESTART;
        sigaction(SIGWINCH, &sa, nullptr);
    }
}

void ProgressView::sample(const ProgressCounts& c) {
    auto now = Clock::now();
    window_.push_back({now, c.done + c.failed + c.cancelled, c.bytes});
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
    std::uint64_t finished = c.done + c.failed + c.cancelled;
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
    if (g_resized.exchange(false)) force = true;
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
        std::fprintf(out_,
                     "{\"type\":\"progress\",\"total\":%llu,\"done\":%llu,\"failed\":%llu,"
                     "\"cancelled\":%llu,\"bytes\":%llu,"
                     "\"rate\":%.1f,\"bytes_per_s\":%.0f,\"eta\":%s,\"elapsed\":%.2f}\n",
                     (unsigned long long)c.total, (unsigned long long)c.done,
                     (unsigned long long)c.failed, (unsigned long long)c.cancelled,
                     (unsigned long long)c.bytes, item_rate_, byte_rate_,
                     eta < 0 ? "null" : std::to_string(std::lround(eta)).c_str(), elapsed);
        std::fflush(out_);
        return;
    }
    auto line = render_bar_line(c, {item_rate_, byte_rate_, eta}, terminal_width(out_));
    clear_line();
    std::fputs(line.c_str(), out_);
    last_length_ = line.size();
    std::fflush(out_);
}

void ProgressView::status(std::string_view text) {
    if (mode_ == ProgressMode::json) return;  // stderr carries JSON lines only
    if (mode_ == ProgressMode::bar) {
        std::string line(text);
        auto limit = static_cast<std::size_t>(std::max(terminal_width(out_) - 1, 1));
        if (line.size() > limit) line.resize(limit);
        clear_line();
        std::fputs(line.c_str(), out_);
        last_length_ = line.size();
        std::fflush(out_);
        return;
    }
    std::string shape;
    for (char c : text)
        if (c < '0' || c > '9') shape += c;
    // Without a bar each kind of news is said once ("reconnecting in 1.2 s"
    // and "reconnecting in 3.4 s" are one kind): a log, not a line per attempt.
    if (!said_.insert(shape).second) return;
    std::fprintf(out_, "%.*s\n", static_cast<int>(text.size()), text.data());
    std::fflush(out_);
}

void ProgressView::end_status() {
    if (mode_ == ProgressMode::bar && last_length_ > 0) {
        std::fputc('\n', out_);
        last_length_ = 0;
        std::fflush(out_);
    }
}

void ProgressView::clear_line() {
    // A terminal made narrower since the last draw may have wrapped that
    // line into several rows (tmux and most terminals reflow): go up to its
    // first row and clear to the end of the screen, not just this row.
    int width = terminal_width(out_);
    std::size_t rows = width > 0 && last_length_ > 0
                           ? (last_length_ - 1) / static_cast<std::size_t>(width) + 1
                           : 1;
    std::fputc('\r', out_);
    if (rows > 1) std::fprintf(out_, "\x1b[%zuA", rows - 1);
    std::fputs("\x1b[J", out_);
}

}  // namespace litchi::cli
