// The embedded store: opening DATA/litchi.db, schema migrations (PRAGMA
// user_version) and crash recovery. The schema is the contract between versions of Litchi: add a
// step to kMigrations, never edit a shipped one.
#include "store/sqlite_store.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace litchi {
namespace {

// Step N takes the schema from version N to N+1.
constexpr const char* kMigrations[] = {
    // 0 -> 1: users, tokens, jobs, items.
    R"sql(
CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,            -- crypto_pwhash_str (argon2id)
    created       INTEGER NOT NULL          -- ms since epoch
);

-- Only the SHA-256 of a token is stored.
CREATE TABLE tokens (
    id        INTEGER PRIMARY KEY,
    user_id   INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    hash      TEXT NOT NULL UNIQUE,
    kind      TEXT NOT NULL CHECK (kind IN ('api', 'session')),
    created   INTEGER NOT NULL,
    last_used INTEGER,
    expires   INTEGER,
    revoked   INTEGER
);
CREATE INDEX tokens_user ON tokens(user_id);

-- Counters are maintained in the same transaction as every item transition
-- and recomputed from items on open (JobStore::recover).
CREATE TABLE jobs (
    id         INTEGER PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    state      TEXT NOT NULL CHECK (state IN ('queued','running','paused','done','cancelled')),
    created    INTEGER NOT NULL,
    updated    INTEGER NOT NULL,
    first_item INTEGER NOT NULL DEFAULT 0,  -- item id range: a job's items are inserted
    last_item  INTEGER NOT NULL DEFAULT 0,  -- in one transaction, so their ids are contiguous
    total      INTEGER NOT NULL DEFAULT 0,
    queued     INTEGER NOT NULL DEFAULT 0,
    active     INTEGER NOT NULL DEFAULT 0,
    done       INTEGER NOT NULL DEFAULT 0,
    failed     INTEGER NOT NULL DEFAULT 0,
    cancelled  INTEGER NOT NULL DEFAULT 0,
    bytes      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX jobs_user ON jobs(user_id, id);
-- The scheduler's question on every claim: which jobs have work? Partial, so
-- finished jobs cost nothing however many there are.
CREATE INDEX jobs_runnable ON jobs(user_id, id)
    WHERE state IN ('queued', 'running') AND queued > 0;

CREATE TABLE items (
    id          INTEGER PRIMARY KEY,
    job_id      INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    position    INTEGER NOT NULL,
    url         TEXT NOT NULL,
    -- queued active done failed cancelled. No CHECK here: it doubled the cost
    -- of inserting 100,000 items, and only JobStore writes this column.
    state       TEXT NOT NULL,
    reason      TEXT,
    http_status INTEGER,
    sha256      TEXT,
    bytes       INTEGER,
    width       INTEGER,
    height      INTEGER,
    format      TEXT,
    attempts    INTEGER NOT NULL DEFAULT 0,
    updated     INTEGER NOT NULL
);
-- Claims (job, queued, oldest first), state-filtered pages, cascade deletes.
CREATE INDEX items_job_state ON items(job_id, state, id);
-- "Does any item still reference this blob?" and image ownership checks.
CREATE INDEX items_sha256 ON items(sha256) WHERE sha256 IS NOT NULL;
)sql",
    // 1 -> 2: leases. A claim records who holds the item (node), under which
    // claim (lease_id: the fence an outcome must match) and until when
    // (lease_until, ms since epoch; renewed every lease/3). The columns stay
    // set after the item finishes (lease_id tells a late duplicate outcome,
    // ignored, from a fenced one) and are cleared when it goes back to the
    // queue.
    R"sql(
ALTER TABLE items ADD COLUMN node TEXT;
ALTER TABLE items ADD COLUMN lease_id INTEGER;
ALTER TABLE items ADD COLUMN lease_until INTEGER;
-- Items a schema-1 process left in flight belong to no node: give them a
-- lease that ran out long ago, so the next recovery puts them back.
UPDATE items SET lease_until = 0 WHERE state = 'active';
-- Renewal (by node) and expiry (by time) look only at active items, found
-- through the jobs that have some (their counters are exact) and then
-- items_job_state. An index on the items themselves would cost every claim
-- and every outcome an index write (a quarter of the claim+apply time); this
-- one changes only when a job's active count crosses zero.
CREATE INDEX jobs_active ON jobs(id) WHERE active > 0;
-- Small counters that must survive restarts and be shared by every
-- connection: last_lease_id is the last lease id handed out.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO meta(key, value) VALUES ('last_lease_id', 0);
)sql",
    // 2 -> 3: job ids are never reused, tokens have a name and a third kind.
    // Job ids: A plain INTEGER PRIMARY KEY hands out
    // max(id)+1, so deleting the newest job gave its id to the next one (an
    // old /jobs/N link opened someone's newer job, a repeated DELETE removed
    // it). AUTOINCREMENT can only be declared, so the table is rebuilt (the
    // SQLite manual's twelve steps; migrate() turns foreign keys off around
    // it, so dropping the old table does not cascade to items). Copying the
    // rows sets sqlite_sequence to the highest id present.
    R"sql(
CREATE TABLE jobs_v3 (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    state      TEXT NOT NULL CHECK (state IN ('queued','running','paused','done','cancelled')),
    created    INTEGER NOT NULL,
    updated    INTEGER NOT NULL,
    first_item INTEGER NOT NULL DEFAULT 0,
    last_item  INTEGER NOT NULL DEFAULT 0,
    total      INTEGER NOT NULL DEFAULT 0,
    queued     INTEGER NOT NULL DEFAULT 0,
    active     INTEGER NOT NULL DEFAULT 0,
    done       INTEGER NOT NULL DEFAULT 0,
    failed     INTEGER NOT NULL DEFAULT 0,
    cancelled  INTEGER NOT NULL DEFAULT 0,
    bytes      INTEGER NOT NULL DEFAULT 0
);
INSERT INTO jobs_v3 (id, user_id, name, state, created, updated, first_item, last_item, total,
                     queued, active, done, failed, cancelled, bytes)
    SELECT id, user_id, name, state, created, updated, first_item, last_item, total,
           queued, active, done, failed, cancelled, bytes FROM jobs;
DROP TABLE jobs;
ALTER TABLE jobs_v3 RENAME TO jobs;
CREATE INDEX jobs_user ON jobs(user_id, id);
CREATE INDEX jobs_runnable ON jobs(user_id, id)
    WHERE state IN ('queued', 'running') AND queued > 0;
CREATE INDEX jobs_active ON jobs(id) WHERE active > 0;
-- Tokens: 'link' is the first-start login link, good for one exchange into a
-- session (user_store.hpp); `name` is what its owner called an API token.
-- Nothing references tokens, so the rebuild is plain.
CREATE TABLE tokens_v3 (
    id        INTEGER PRIMARY KEY,
    user_id   INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    hash      TEXT NOT NULL UNIQUE,
    kind      TEXT NOT NULL CHECK (kind IN ('api', 'session', 'link')),
    name      TEXT,
    created   INTEGER NOT NULL,
    last_used INTEGER,
    expires   INTEGER,
    revoked   INTEGER
);
INSERT INTO tokens_v3 (id, user_id, hash, kind, created, last_used, expires, revoked)
    SELECT id, user_id, hash, kind, created, last_used, expires, revoked FROM tokens;
DROP TABLE tokens;
ALTER TABLE tokens_v3 RENAME TO tokens;
CREATE INDEX tokens_user ON tokens(user_id);
)sql",
    // 3 -> 4: per-job request options and completion webhooks. `options` is
    // core/request_options.hpp's stored form (headers, limits, the webhook
    // with its secret); `webhook_events` (",done,failed,") is set only when
    // the job has a webhook. The triggers write a delivery into the outbox in
    // the very transaction that ends such a job, so no crash falls between a
    // job's end and its delivery being owed. The event: cancelled, failed
    // (done with at least one failed item) or done.
    R"sql(
ALTER TABLE jobs ADD COLUMN options TEXT;
ALTER TABLE jobs ADD COLUMN webhook_events TEXT;
CREATE TABLE webhook_deliveries (
    id          INTEGER PRIMARY KEY,
    job_id      INTEGER NOT NULL,           -- no foreign key: the row outlives a deleted job
    delivery    TEXT NOT NULL UNIQUE,       -- X-Litchi-Delivery, the same on every attempt
    event       TEXT NOT NULL,
    state       TEXT NOT NULL DEFAULT 'pending',  -- pending delivered failed
    attempts    INTEGER NOT NULL DEFAULT 0,
    created     INTEGER NOT NULL,
    updated     INTEGER NOT NULL,
    next_at     INTEGER NOT NULL DEFAULT 0, -- due from (ms)
    lease_until INTEGER NOT NULL DEFAULT 0, -- claimed by an attempt until (ms)
    body        TEXT,
    http_status INTEGER,
    error       TEXT
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(next_at) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_job ON webhook_deliveries(job_id, id);
CREATE TRIGGER jobs_webhook_on_end AFTER UPDATE OF state ON jobs
WHEN NEW.webhook_events IS NOT NULL AND OLD.state <> NEW.state
     AND NEW.state IN ('done', 'cancelled')
     AND instr(NEW.webhook_events, ',' || (CASE WHEN NEW.state = 'cancelled' THEN 'cancelled'
               WHEN NEW.failed > 0 THEN 'failed' ELSE 'done' END) || ',') > 0
BEGIN
    INSERT INTO webhook_deliveries(job_id, delivery, event, created, updated)
    VALUES (NEW.id, lower(hex(randomblob(16))),
            CASE WHEN NEW.state = 'cancelled' THEN 'cancelled'
                 WHEN NEW.failed > 0 THEN 'failed' ELSE 'done' END,
            NEW.updated, NEW.updated);
END;
)sql",
};

constexpr int kMigrationCount = static_cast<int>(std::size(kMigrations));
static_assert(kMigrationCount == kSchemaVersion, "one migration step per schema version");

}  // namespace

void migrate(Database& db, int up_to) {
    std::lock_guard lock(db.mutex());
    int version = db.user_version();
    if (version > kSchemaVersion)
        throw std::runtime_error(db.file().string() + " has schema version " +
                                 std::to_string(version) + "; this Litchi knows up to " +
                                 std::to_string(kSchemaVersion));
    if (version >= std::min(up_to, kSchemaVersion)) return;
    // Off while steps rebuild tables (a DROP would otherwise cascade); the
    // pragma is ignored inside a transaction, hence here. Checked before each
    // commit, switched back on whatever happens.
    db.exec("PRAGMA foreign_keys=OFF");
    struct ForeignKeysBackOn {
        Database& db;
        ~ForeignKeysBackOn() {
            try {
                db.exec("PRAGMA foreign_keys=ON");
            } catch (...) {
            }
        }
    } back_on{db};
    for (; version < std::min(up_to, kSchemaVersion); ++version) {
        Transaction txn(db);
        db.exec(kMigrations[version]);
        if (db.prepare("PRAGMA foreign_key_check").step())
            throw std::runtime_error(db.file().string() + ": migration to schema " +
                                     std::to_string(version + 1) + " broke a foreign key");
        db.set_user_version(version +
                            1);  // inside the txn: the step and its number commit together
        txn.commit();
    }
}

SqliteStore::SqliteStore(const std::filesystem::path& data_dir, StoreOptions options,
                         DatabaseOptions database)
    : SqliteStore(SqliteFile{database_path(data_dir)}, std::move(options), database) {}

SqliteStore::SqliteStore(const SqliteFile& file, StoreOptions options, DatabaseOptions database) {
    if (file.path.has_parent_path()) std::filesystem::create_directories(file.path.parent_path());
    db_ = std::make_unique<Database>(file.path, database);
    migrate(*db_);
    users_ = std::make_unique<SqliteUserStore>(*db_, options.users, options.clock);
    jobs_ = std::make_unique<SqliteJobStore>(*db_, options);
    if (options.recover_on_open) {
        recovery_ = jobs_->recover();
        // Webhook attempts in flight died with the process that made them
        // (one process per data folder): due again now, not after their lease.
        db_->exec("UPDATE webhook_deliveries SET lease_until = 0 WHERE state = 'pending'");
    }
}

SqliteStore::~SqliteStore() = default;

std::string SqliteStore::describe() const {
    return "sqlite:" + db_->file().string();
}

}  // namespace litchi
