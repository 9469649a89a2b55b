// `litchi token create NAME` (a new API token for a user, printed on stdout
// and nowhere else: only its hash is stored), `litchi token list NAME` (ids,
// kinds, created, last used; never a token) and `litchi token revoke ID`
// [--data DIR] [--db URL]. Works on the server's store: DATA/litchi.db, or
// the database --db (LITCHI_DB) names. Opens the store without crash
// recovery, so it is safe while servers run on it; a revoked token's open
// sockets close at the server's next credential check (--token-recheck).
#include <charconv>
#include <cstdio>
#include <ctime>
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

struct TokenOptions {
    std::string name;  // create, list: the user
    std::string id;    // revoke
    std::string data_dir = "var";
    std::string db;
};

std::string format_time(std::optional<TimeMs> ms) {
    if (!ms) return "-";
    std::time_t seconds = static_cast<std::time_t>(*ms / 1000);
    std::tm tm{};
    gmtime_r(&seconds, &tm);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%d %H:%M UTC", &tm);
    return text;
}

// The store, or nullptr after saying why (a usage error: exit status 2).
std::unique_ptr<Store> open_existing_store(const TokenOptions& opt, std::string_view command) {
    auto location = db_location(opt.db, opt.data_dir, command);
    if (!location) return nullptr;
    // Opening a SQLite file that is not there would create an empty store
    // (with no users) in the wrong place: most likely --data is mistyped.
    // A PostgreSQL database is the operator's; it is migrated if empty.
    if (location->kind == StoreLocation::Kind::sqlite &&
        !std::filesystem::is_regular_file(location->sqlite_file)) {
        std::cerr << command << ": no database at " << location->sqlite_file.string()
                  << " (start `litchi serve` or `litchi user add` first)\n";
        return nullptr;
    }
    // No recovery: a server may be running downloads on this store.
    return open_store(*location, tool_store_options());
}

template <class Body>
int guarded(std::string_view command, Body&& body) {
    try {
        return body();
    } catch (const std::exception& e) {
        // Store errors name the database with any password redacted.
        std::cerr << command << ": " << e.what() << "\n";
        return 1;
    }
}

int run_token_create(const TokenOptions& opt) {
    constexpr std::string_view command = "litchi token create";
    if (!UserStore::valid_user_name(opt.name)) {
        std::cerr << command << ": not a valid user name\n";
        return 2;
    }
    return guarded(command, [&] {
        auto store = open_existing_store(opt, command);
        if (!store) return 2;
        auto& users = store->users();
        auto user = users.find_user(opt.name);
        if (!user) {
            std::cerr << command << ": no user named " << opt.name << "\n";
            return 2;
        }
        auto issued = users.create_token(user->id, TokenKind::api);
        std::cout << issued.token << "\n";
        return 0;
    });
}

int run_token_list(const TokenOptions& opt) {
    constexpr std::string_view command = "litchi token list";
    return guarded(command, [&] {
        auto store = open_existing_store(opt, command);
        if (!store) return 2;
        auto user = store->users().find_user(opt.name);
        if (!user) {
            std::cerr << command << ": no user named " << opt.name << "\n";
            return 2;
        }
        std::printf("%-6s %-8s %-21s %-21s %-8s %s\n", "ID", "KIND", "CREATED", "LAST USED",
                    "STATE", "NAME");
        auto now = now_ms();
        for (const auto& token : store->users().list_tokens(user->id)) {
            const char* state = token.revoked                              ? "revoked"
                                : (token.expires && *token.expires <= now) ? "expired"
                                                                           : "active";
            std::printf("%-6lld %-8s %-21s %-21s %-8s %s\n", static_cast<long long>(token.id),
                        std::string(to_string(token.kind)).c_str(),
                        format_time(token.created).c_str(), format_time(token.last_used).c_str(),
                        state, token.name.c_str());
        }
        return 0;
    });
}

int run_token_revoke(const TokenOptions& opt) {
    constexpr std::string_view command = "litchi token revoke";
    TokenId id = 0;
    auto [end, ec] = std::from_chars(opt.id.data(), opt.id.data() + opt.id.size(), id);
    if (ec != std::errc() || end != opt.id.data() + opt.id.size() || id <= 0) {
        std::cerr << command << ": \"" << opt.id
                  << "\" is not a token id (a number from `litchi token list NAME`)\n";
        return 2;
    }
    return guarded(command, [&] {
        auto store = open_existing_store(opt, command);
        if (!store) return 2;
        auto token = store->users().find_token(id);
        if (!token) {
            std::cerr << command << ": no token with id " << id << "\n";
            return 2;
        }
        if (!store->users().revoke_token(token->user, id)) {
            std::cerr << command << ": token " << id << " was revoked already\n";
            return 2;
        }
        std::cout << "revoked token " << id << "\n";
        return 0;
    });
}

void add_store_flags(CLI::App* sub, TokenOptions& opt) {
    sub->add_option("--data", opt.data_dir, "The server's data folder")->capture_default_str();
    add_db_option(sub, opt.db);
}

}  // namespace

void add_token_command(CLI::App& app, int& status) {
    // Each subcommand gets its own options: CLI11 fills --db from LITCHI_DB
    // for every subcommand, used or not, so a shared one would let the
    // environment overwrite the --db given to the one being run.
    auto* token = app.add_subcommand("token", "Manage API tokens");
    token->require_subcommand(1);

    auto create_opt = std::make_shared<TokenOptions>();
    auto* create = token->add_subcommand("create", "Print a new API token for a user");
    create->add_option("name", create_opt->name, "User name")->required();
    add_store_flags(create, *create_opt);
    create->callback([create_opt, &status] { status = run_token_create(*create_opt); });

    auto list_opt = std::make_shared<TokenOptions>();
    auto* list = token->add_subcommand(
        "list", "List a user's tokens: id, kind, created, last used (never the token itself)");
    list->add_option("name", list_opt->name, "User name")->required();
    add_store_flags(list, *list_opt);
    list->callback([list_opt, &status] { status = run_token_list(*list_opt); });

    auto revoke_opt = std::make_shared<TokenOptions>();
    auto* revoke = token->add_subcommand("revoke", "Revoke a token by its id (from `token list`)");
    revoke->add_option("id", revoke_opt->id, "Token id")->required();
    add_store_flags(revoke, *revoke_opt);
    revoke->callback([revoke_opt, &status] { status = run_token_revoke(*revoke_opt); });
}

}  // namespace litchi::cli
