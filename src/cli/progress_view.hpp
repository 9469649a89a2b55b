// Terminal progress for `litchi fetch` (and later `litchi watch`): a one-line
// bar redrawn in place on a terminal, or one JSON object a line for tools.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <string>

namespace litchi::cli {

struct ProgressCounts {
    std::uint64_t total = 0;
    std::uint64_t done = 0;
    std::uint64_t failed = 0;
    std::uint64_t bytes = 0;
};

enum class ProgressMode { none, bar, json };

// Parses auto|bar|json|none; auto picks bar when `stream` is a terminal.
bool parse_progress_mode(const std::string& text, std::FILE* stream, ProgressMode& out);

class ProgressView {
  public:
    ProgressView(ProgressMode mode, std::FILE* out);

    // Call as often as you like; draws at most every `min_interval`.
    void update(const ProgressCounts& counts, bool force = false);
    // Final draw, then a newline for the bar.
    void finish(const ProgressCounts& counts);

    // The ETA in seconds from the item rate over a sliding window of recent
    // samples (negative when unknown).
    double eta_seconds(const ProgressCounts& counts) const;

    static std::string format_bytes(double bytes);
    static std::string format_duration(double seconds);

  private:
    using Clock = std::chrono::steady_clock;
    struct Sample {
        Clock::time_point at;
        std::uint64_t items;
        std::uint64_t bytes;
    };
    void sample(const ProgressCounts& counts);
    void draw(const ProgressCounts& counts);

    ProgressMode mode_;
    std::FILE* out_;
    Clock::time_point start_ = Clock::now();
    Clock::time_point last_draw_{};
    std::chrono::milliseconds min_interval_;
    std::deque<Sample> window_;
    double item_rate_ = 0, byte_rate_ = 0;
};

}  // namespace litchi::cli
