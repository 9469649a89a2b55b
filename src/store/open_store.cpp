// Choosing the backend from `--db` (store.hpp).
#include <cctype>

#include "store/pg_connection.hpp"
#include "store/pg_store.hpp"
#include "store/sqlite_store.hpp"

namespace litchi {

std::optional<StoreLocation> parse_store_location(std::string_view text,
                                                  const std::filesystem::path& data_dir,
                                                  std::string* error) {
    auto fail = [&](std::string why) -> std::optional<StoreLocation> {
        if (error) *error = std::move(why);
        return std::nullopt;
    };
    StoreLocation location;
    if (text.empty()) {
        location.sqlite_file = SqliteStore::database_path(data_dir);
        return location;
    }
    if (text.starts_with("sqlite:")) {
        auto path = text.substr(7);
        if (path.empty()) return fail("--db sqlite: needs a file path (sqlite:PATH)");
        location.sqlite_file = std::filesystem::path(std::string(path));
        return location;
    }
    if (text.starts_with("postgresql://") || text.starts_with("postgres://")) {
        location.kind = StoreLocation::Kind::postgresql;
        location.uri = std::string(text);
        return location;
    }
    return fail("--db must be empty, sqlite:PATH or a postgresql:// URI, not '" +
                pg::redact_uri(text) + "'");
}

std::unique_ptr<Store> open_store(const StoreLocation& location, StoreOptions options) {
    if (location.kind == StoreLocation::Kind::postgresql)
        return std::make_unique<PgStore>(location.uri, std::move(options));
    return std::make_unique<SqliteStore>(SqliteFile{location.sqlite_file}, std::move(options));
}

}  // namespace litchi
