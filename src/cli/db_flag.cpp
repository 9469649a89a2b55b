// See db_flag.hpp.
#include "cli/db_flag.hpp"

#include <iostream>

namespace litchi::cli {

void add_db_option(CLI::App* command, std::string& db) {
    command->add_option("--db", db, kDbFlagHelp)->envname("LITCHI_DB");
}

std::optional<StoreLocation> db_location(const std::string& db, const std::string& data_dir,
                                         std::string_view command) {
    std::string error;
    auto location = parse_store_location(db, data_dir, &error);
    // The error never repeats a password (parse_store_location redacts).
    if (!location) std::cerr << command << ": " << error << "\n";
    return location;
}

}  // namespace litchi::cli
