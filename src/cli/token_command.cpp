// `litchi token create NAME [--data DIR]`: a new API token for a user,
// printed on stdout and nowhere else (only its hash is stored). Opens the
// store without crash recovery, so it is safe while a server runs on DIR.
#include <iostream>
#include <memory>
#include <string>

#include "cli/commands.hpp"
#include "store/sqlite_store.hpp"
#include "store/user_store.hpp"

namespace litchi::cli {
namespace {

struct TokenCreateOptions {
    std::string name;
    std::string data_dir = "var";
};

int run_token_create(const TokenCreateOptions& opt) {
    if (!UserStore::valid_user_name(opt.name)) {
        std::cerr << "litchi token create: not a valid user name\n";
        return 2;
    }
    if (!std::filesystem::is_regular_file(SqliteStore::database_path(opt.data_dir))) {
        std::cerr << "litchi token create: no database in " << opt.data_dir
                  << " (start `litchi serve` or `litchi user add` first)\n";
        return 2;
    }
    try {
        // No recovery: a server may be running downloads on this folder.
        auto store = open_store(*parse_store_location("", opt.data_dir), tool_store_options());
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
    create->callback([opt, &status] { status = run_token_create(*opt); });
}

}  // namespace litchi::cli
