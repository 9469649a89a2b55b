// `--db URL` (or LITCHI_DB) for the commands that work on the server's store
// (user, token): where the database is, checked before anything else
// happens, with one error message for every command.
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "store/store.hpp"

namespace litchi::cli {

// What `--db` takes, for help texts.
inline constexpr const char* kDbFlagHelp =
    "The database: sqlite:PATH, or a postgresql://USER@HOST:PORT/DB URI shared by a cluster "
    "(default: $LITCHI_DB, else DATA/litchi.db)";

// Adds `--db` to `command`, reading LITCHI_DB when the flag is not given.
void add_db_option(CLI::App* command, std::string& db);

// The store `db` (the flag's value) names, DATA/litchi.db when empty; nullopt
// after printing "<command>: <why>" to stderr (a usage error: exit status 2).
std::optional<StoreLocation> db_location(const std::string& db, const std::string& data_dir,
                                         std::string_view command);

}  // namespace litchi::cli
