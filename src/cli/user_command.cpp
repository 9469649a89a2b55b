// `litchi user add|passwd|delete NAME`, `litchi user list` [--data DIR]
// [--db URL]: the server's users. Passwords are read from the first line of
// stdin (so they never show in `ps` or shell history). Works on the server's
// store: DATA/litchi.db, or the database --db (LITCHI_DB) names, PostgreSQL
// included (created and migrated if empty). Opens the store without crash
// recovery, so it is safe while servers run on it.
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>

#include "blobs/blob_store.hpp"
#include "cli/commands.hpp"
#include "cli/db_flag.hpp"
#include "store/store.hpp"
#include "store/user_store.hpp"

namespace litchi::cli {
namespace {

struct UserOptions {
    std::string name;
    std::string data_dir = "var";
    std::string db;
    std::string blobs_dir;  // delete: where the server keeps images (default DATA/blobs)
};

// "2026-12-02 10:29 UTC" for a time in ms since the epoch; "-" for none.
std::string format_time(std::optional<TimeMs> ms) {
    if (!ms) return "-";
    std::time_t seconds = static_cast<std::time_t>(*ms / 1000);
    std::tm tm{};
    gmtime_r(&seconds, &tm);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%d %H:%M UTC", &tm);
    return text;
}

// The store `opt` names, for `command`; nullptr after printing why (the
// status to return is then in `status`). An existing SQLite file is required
// unless `create` (opening a missing one would make an empty store in the
// wrong place: most likely --data is mistyped).
std::unique_ptr<Store> open_tool_store(const UserOptions& opt, std::string_view command,
                                       bool create, int& status) {
    status = 2;
    auto location = db_location(opt.db, opt.data_dir, command);
    if (!location) return nullptr;
    if (!create && location->kind == StoreLocation::Kind::sqlite &&
        !std::filesystem::is_regular_file(location->sqlite_file)) {
        std::cerr << command << ": no database at " << location->sqlite_file.string()
                  << " (start `litchi serve` or `litchi user add` first)\n";
        return nullptr;
    }
    // No recovery: a server may be running downloads on this store.
    auto store = open_store(*location, tool_store_options());
    status = 0;
    return store;
}

// The first line of stdin, without its line end; nullopt (after saying so) if none.
std::optional<std::string> read_password(std::string_view command) {
    std::string password;
    if (!std::getline(std::cin, password)) {
        std::cerr << command << ": give the password on stdin (one line; "
                  << describe_password_limits() << ")\n";
        return std::nullopt;
    }
    if (!password.empty() && password.back() == '\r') password.pop_back();
    return password;
}

// Runs `body` and turns a store failure into exit status 1 with its message
// (store errors name the database with any password redacted).
template <class Body>
int guarded(std::string_view command, Body&& body) {
    try {
        return body();
    } catch (const std::exception& e) {
        std::cerr << command << ": " << e.what() << "\n";
        return 1;
    }
}

int run_user_add(const UserOptions& opt) {
    constexpr std::string_view command = "litchi user add";
    if (!UserStore::valid_user_name(opt.name)) {
        std::cerr << command << ": user names are 1 to 64 of A-Z a-z 0-9 _ . -\n";
        return 2;
    }
    if (!db_location(opt.db, opt.data_dir, command)) return 2;
    auto password = read_password(command);
    if (!password) return 2;
    return guarded(command, [&] {
        int status = 0;
        auto store = open_tool_store(opt, command, true, status);
        if (!store) return status;
        auto created = store->users().create_user(opt.name, *password);
        if (!created.user) {
            std::cerr << command << ": " << to_string(created.error) << "\n";
            return 2;
        }
        std::cout << "created user " << created.user->name << "\n";
        return 0;
    });
}

int run_user_passwd(const UserOptions& opt) {
    constexpr std::string_view command = "litchi user passwd";
    if (!db_location(opt.db, opt.data_dir, command)) return 2;
    auto password = read_password(command);
    if (!password) return 2;
    return guarded(command, [&] {
        int status = 0;
        auto store = open_tool_store(opt, command, false, status);
        if (!store) return status;
        auto user = store->users().find_user(opt.name);
        if (!user) {
            std::cerr << command << ": no user named " << opt.name << "\n";
            return 2;
        }
        if (auto error = store->users().set_password(user->id, *password);
            error != UserError::none) {
            std::cerr << command << ": " << to_string(error) << "\n";
            return 2;
        }
        std::cout << "changed the password of " << user->name << "\n";
        return 0;
    });
}

int run_user_list(const UserOptions& opt) {
    constexpr std::string_view command = "litchi user list";
    return guarded(command, [&] {
        int status = 0;
        auto store = open_tool_store(opt, command, false, status);
        if (!store) return status;
        std::printf("%-6s %-24s %s\n", "ID", "NAME", "CREATED");
        for (const auto& user : store->users().list_users())
            std::printf("%-6lld %-24s %s\n", static_cast<long long>(user.id), user.name.c_str(),
                        format_time(user.created).c_str());
        return 0;
    });
}

int run_user_delete(const UserOptions& opt) {
    constexpr std::string_view command = "litchi user delete";
    return guarded(command, [&] {
        int status = 0;
        auto store = open_tool_store(opt, command, false, status);
        if (!store) return status;
        auto user = store->users().find_user(opt.name);
        if (!user) {
            std::cerr << command << ": no user named " << opt.name << "\n";
            return 2;
        }
        // Their jobs first, through the job store: it says which images no
        // other job uses, and those files go too.
        std::filesystem::path blobs_dir = opt.blobs_dir.empty()
                                              ? std::filesystem::path(opt.data_dir) / "blobs"
                                              : std::filesystem::path(opt.blobs_dir);
        std::unique_ptr<BlobStore> blobs;
        if (std::filesystem::is_directory(blobs_dir))
            blobs = std::make_unique<BlobStore>(blobs_dir, BlobLayout::sharded);
        std::size_t jobs = 0, files = 0;
        for (const auto& job : store->jobs().list_jobs(user->id)) {
            auto deleted = store->jobs().delete_job(user->id, job.id);
            if (deleted.status != JobOpStatus::ok) continue;
            ++jobs;
            if (!blobs) continue;
            for (const auto& blob : deleted.unreferenced) {
                blobs->remove(blob.sha256, blob.format);
                ++files;
            }
        }
        store->users().delete_user(user->id);
        std::cout << "deleted user " << user->name << " (" << jobs << " jobs, " << files
                  << " image files)\n";
        return 0;
    });
}

// The flags every user subcommand takes.
void add_store_flags(CLI::App* sub, UserOptions& opt) {
    sub->add_option("--data", opt.data_dir, "The server's data folder")->capture_default_str();
    add_db_option(sub, opt.db);
}

}  // namespace

void add_user_command(CLI::App& app, int& status) {
    // Each subcommand gets its own options: CLI11 fills --db from LITCHI_DB
    // for every subcommand, used or not, so a shared one would let the
    // environment overwrite the --db given to the one being run.
    auto* user = app.add_subcommand("user", "Manage users of the server");
    user->require_subcommand(1);

    auto add_opt = std::make_shared<UserOptions>();
    auto* add = user->add_subcommand(
        "add", "Create a user; the password (8 to 1024 characters) is read from stdin");
    add->add_option("name", add_opt->name, "User name")->required();
    add_store_flags(add, *add_opt);
    add->callback([add_opt, &status] { status = run_user_add(*add_opt); });

    auto passwd_opt = std::make_shared<UserOptions>();
    auto* passwd = user->add_subcommand(
        "passwd", "Set a user's password, read from stdin (8 to 1024 characters)");
    passwd->add_option("name", passwd_opt->name, "User name")->required();
    add_store_flags(passwd, *passwd_opt);
    passwd->callback([passwd_opt, &status] { status = run_user_passwd(*passwd_opt); });

    auto list_opt = std::make_shared<UserOptions>();
    auto* list = user->add_subcommand("list", "List the users (id, name, created)");
    add_store_flags(list, *list_opt);
    list->callback([list_opt, &status] { status = run_user_list(*list_opt); });

    auto remove_opt = std::make_shared<UserOptions>();
    auto* remove = user->add_subcommand(
        "delete", "Delete a user with their tokens, jobs and the images no other job uses");
    remove->add_option("name", remove_opt->name, "User name")->required();
    add_store_flags(remove, *remove_opt);
    remove->add_option("--blobs", remove_opt->blobs_dir,
                       "The server's image folder (default DATA/blobs)");
    remove->callback([remove_opt, &status] { status = run_user_delete(*remove_opt); });
}

}  // namespace litchi::cli
