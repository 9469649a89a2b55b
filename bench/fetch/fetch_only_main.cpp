// Benchmark-only driver: `litchi fetch` alone, built from the same sources as
// litchi's fetch command (the full binary links the server too).
#include <string>

#include "cli/commands.hpp"
#include "fetch/engine.hpp"
int main(int argc, char** argv) {
    litchi::init_fetch_libraries(argv[0]);
    CLI::App app{"litchi (fetch only)", "litchi"};
    app.require_subcommand(1);
    int status = 0;
    litchi::cli::add_fetch_command(app, status);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        int rc = app.exit(e);
        return rc == 0 ? 0 : 2;
    }
    return status;
}
