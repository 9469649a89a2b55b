// `litchi user add NAME [--data DIR] [--db URL]`: creates a user; the
// password is read from the first line of stdin (so it never shows in `ps`
// or shell history). Works on the server's store: DATA/litchi.db, or the
// database --db (LITCHI_DB) names, PostgreSQL included (created and migrated
// if empty). Opens the store without crash recovery, so it is safe while
// servers run on it.
#include <iostream>
#include <memory>
#include <string>

#include "cli/commands.hpp"
#include "cli/db_flag.hpp"
#include "store/store.hpp"
#include "store/user_store.hpp"

namespace litchi::cli {
namespace {

struct UserAddOptions {
    std::string name;
    std::string data_dir = "var";
    std::string db;
};

int run_user_add(const UserAddOptions& opt) {
    if (!UserStore::valid_user_name(opt.name)) {
        std::cerr << "litchi user add: user names are 1 to 64 of A-Z a-z 0-9 _ . -\n";
        return 2;
    }
    auto location = db_location(opt.db, opt.data_dir, "litchi user add");
    if (!location) return 2;
    std::string password;
    if (!std::getline(std::cin, password)) {
        std::cerr << "litchi user add: give the password on stdin (one line)\n";
        return 2;
    }
    if (!password.empty() && password.back() == '\r') password.pop_back();
    try {
        // No recovery: a server may be running downloads on this store.
        auto store = open_store(*location, tool_store_options());
        auto created = store->users().create_user(opt.name, password);
        if (!created.user) {
            std::cerr << "litchi user add: " << to_string(created.error) << "\n";
            return 2;
        }
        std::cout << "created user " << created.user->name << "\n";
        return 0;
    } catch (const std::exception& e) {
        // Store errors name the database with any password redacted.
        std::cerr << "litchi user add: " << e.what() << "\n";
        return 1;
    }
}

}  // namespace

void add_user_command(CLI::App& app, int& status) {
    auto opt = std::make_shared<UserAddOptions>();
    auto* user = app.add_subcommand("user", "Manage users of the server");
    user->require_subcommand(1);
    auto* add = user->add_subcommand("add", "Create a user; the password is read from stdin");
    add->add_option("name", opt->name, "User name")->required();
    add->add_option("--data", opt->data_dir, "The server's data folder")->capture_default_str();
    add_db_option(add, opt->db);
    add->callback([opt, &status] { status = run_user_add(*opt); });
}

}  // namespace litchi::cli
