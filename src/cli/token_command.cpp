// `litchi token create NAME [--data DIR] [--db URL]`: a new API token for a
// user, printed on stdout and nowhere else (only its hash is stored). Works
// on the server's store: DATA/litchi.db, or the database --db (LITCHI_DB)
// names. Opens the store without crash recovery, so it is safe while
// servers run on it.
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>

#include "cli/commands.hpp"
#include "cli/db_flag.hpp"
#include "store/store.hpp"
#include "store/user_store.hpp"

namespace litchi::cli {
namespace {

struct TokenCreateOptions {
    std::string name;
    std::string data_dir = "var";
    std::string db;
};

int run_token_create(const TokenCreateOptions& opt) {
    if (!UserStore::valid_user_name(opt.name)) {
        std::cerr << "litchi token create: not a valid user name\n";
        return 2;
    }
    auto location = db_location(opt.db, opt.data_dir, "litchi token create");
    if (!location) return 2;
    // Opening a SQLite file that is not there would create an empty store
    // (with no users) in the wrong place: most likely --data is mistyped.
    // A PostgreSQL database is the operator's; it is migrated if empty.
    if (location->kind == StoreLocation::Kind::sqlite &&
        !std::filesystem::is_regular_file(location->sqlite_file)) {
        std::cerr << "litchi token create: no database at " << location->sqlite_file.string()
                  << " (start `litchi serve` or `litchi user add` first)\n";
        return 2;
    }
    try {
        // No recovery: a server may be running downloads on this store.
        auto store = open_store(*location, tool_store_options());
        auto& users = store->users();
        auto user = users.find_user(opt.name);
        if (!user) {
            std::cerr << "litchi token create: no user named " << opt.name << "\n";
            return 2;
        }
        auto issued = users.create_token(user->id, TokenKind::api);
        std::cout << issued.token << "\n";
        return 0;
    } catch (const std::exception& e) {
        // Store errors name the database with any password redacted.
        std::cerr << "litchi token create: " << e.what() << "\n";
        return 1;
    }
}

}  // namespace

void add_token_command(CLI::App& app, int& status) {
    auto opt = std::make_shared<TokenCreateOptions>();
    auto* token = app.add_subcommand("token", "Manage API tokens");
    token->require_subcommand(1);
    auto* create = token->add_subcommand("create", "Print a new API token for a user");
    create->add_option("name", opt->name, "User name")->required();
    create->add_option("--data", opt->data_dir, "The server's data folder")->capture_default_str();
    add_db_option(create, opt->db);
    create->callback([opt, &status] { status = run_token_create(*opt); });
}

}  // namespace litchi::cli
