// Each `litchi` subcommand lives in its own <name>_command.cpp and registers
// itself on the CLI11 app. A command's callback returns the process exit status
// through `int& status`; usage errors are exit status 2 (CLI11 does that).
#pragma once

#include <CLI/CLI.hpp>

namespace litchi::cli {

void add_fetch_command(CLI::App& app, int& status);
void add_serve_command(CLI::App& app, int& status);
void add_user_command(CLI::App& app, int& status);
void add_token_command(CLI::App& app, int& status);
void add_watch_command(CLI::App& app, int& status);

}  // namespace litchi::cli
