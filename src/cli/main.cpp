// litchi: download batches of images from URLs, and show the progress live.
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cli/commands.hpp"
#include "core/version.hpp"
#include "fetch/engine.hpp"

namespace {

// Edits (insert, delete, substitute, swap two neighbours) from a to b.
std::size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<std::vector<std::size_t>> d(a.size() + 1, std::vector<std::size_t>(b.size() + 1));
    for (std::size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
    for (std::size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        for (std::size_t j = 1; j <= b.size(); ++j) {
            std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
                d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
        }
    }
    return d[a.size()][b.size()];
}

// CLI11 says "A subcommand is required" for `litchi fecth`: before it
// parses, walk the command words and name the one that is not a command,
// with the nearest one when it is close. Stops at the first option or at a
// command that takes no subcommands (the rest is CLI11's). Returns the exit
// status (2) when it refused.
std::optional<int> refuse_unknown_command(CLI::App& app, int argc, char** argv) {
    CLI::App* current = &app;
    std::string path = "litchi";
    for (int i = 1; i < argc; ++i) {
        std::string_view word = argv[i];
        if (word.empty() || word.front() == '-') return std::nullopt;
        auto subcommands = current->get_subcommands([](CLI::App*) { return true; });
        if (subcommands.empty()) return std::nullopt;
        CLI::App* match = nullptr;
        const CLI::App* nearest = nullptr;
        std::size_t best = 3;  // suggest only within two edits
        std::string names;
        for (CLI::App* sub : subcommands) {
            if (sub->get_name() == word) match = sub;
            std::size_t distance = edit_distance(word, sub->get_name());
            if (distance < best) best = distance, nearest = sub;
            names += (names.empty() ? "" : ", ") + sub->get_name();
        }
        if (!match) {
            std::cerr << path << ": unknown command '" << word << "'";
            if (nearest) std::cerr << "; did you mean '" << nearest->get_name() << "'?";
            std::cerr << "\n(commands: " << names << "; see " << path << " --help)\n";
            return 2;
        }
        current = match;
        path += " " + match->get_name();
    }
    return std::nullopt;
}

}  // namespace

int main(int argc, char** argv) {
    litchi::init_fetch_libraries(argv[0]);
    CLI::App app{"litchi: download batches of images from URLs, with live progress", "litchi"};
    app.require_subcommand(1);
    app.set_version_flag("--version", "litchi " + std::string(litchi::kVersion));
    int status = 0;
    litchi::cli::add_fetch_command(app, status);
    litchi::cli::add_serve_command(app, status);
    litchi::cli::add_user_command(app, status);
    litchi::cli::add_token_command(app, status);
    litchi::cli::add_watch_command(app, status);
    if (auto refused = refuse_unknown_command(app, argc, argv)) return *refused;
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        int rc = app.exit(e);
        // CLI11 returns 0 for --help/--version; every real usage error is 2.
        return rc == 0 ? 0 : 2;
    }
    return status;
}
