// litchi: download batches of images from URLs, and show the progress live.
#include <cstdio>
#include <string>

#include "cli/commands.hpp"
#include "core/version.hpp"
#include "fetch/engine.hpp"

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
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        int rc = app.exit(e);
        // CLI11 returns 0 for --help/--version; every real usage error is 2.
        return rc == 0 ? 0 : 2;
    }
    return status;
}
