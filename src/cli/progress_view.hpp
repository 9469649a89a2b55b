// Terminal progress for `litchi fetch` and `litchi watch`: a one-line bar
// redrawn in place on a terminal, or one JSON object a line for tools. The
// bar fits the terminal's width (asked again on every draw, and at once after
// a SIGWINCH): fields are shortened, then dropped, least useful first, so a
// redraw never wraps into a stack of bars. Bytes are in binary units (KiB,
// MiB: the web app's convention too).
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <set>
#include <string>
#include <string_view>

namespace litchi::cli {

struct ProgressCounts {
    std::uint64_t total = 0;
    std::uint64_t done = 0;
    std::uint64_t failed = 0;
    std::uint64_t cancelled = 0;  // finished without a result (watch: cancelled jobs' items)
    std::uint64_t bytes = 0;
};

// What the bar line shows, besides the counts.
struct BarFigures {
    double item_rate = 0;  // items/s
    double byte_rate = 0;  // bytes/s
    double eta = -1;       // seconds; negative: unknown
};

// The bar line for a terminal `width` columns wide: at most width - 1
// characters (the last column would make some terminals wrap). Pure; the
// bar in a real terminal is tested in tmux (tests/integration/test_terminal_bar.py).
std::string render_bar_line(const ProgressCounts& counts, const BarFigures& figures, int width);

// The terminal's width in columns (TIOCGWINSZ on `stream`, else $COLUMNS, else 80).
int terminal_width(std::FILE* stream);

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
    // A passing status ("connection lost; retrying in 2 s") on the bar's own
    // line, replaced by the next draw or status: one line, however many come.
    // Without a bar: a line to stderr the first time its text (digits aside) comes.
    void status(std::string_view text);
    // Ends a status line left on screen (before other output).
    void end_status();

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
    void clear_line();  // the last bar, also the rows it wrapped into after a resize

    ProgressMode mode_;
    std::FILE* out_;
    Clock::time_point start_ = Clock::now();
    Clock::time_point last_draw_{};
    std::chrono::milliseconds min_interval_;
    std::deque<Sample> window_;
    double item_rate_ = 0, byte_rate_ = 0;
    std::size_t last_length_ = 0;  // of the bar on screen
    std::set<std::string> said_;   // statuses without digits: each kind is said once
};

}  // namespace litchi::cli
