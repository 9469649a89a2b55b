// The PostgreSQL schema and its migrations. The schema is the contract
// between versions of Litchi and between the nodes of a cluster: add a step
// to kMigrations, never edit a shipped one.
#include <stdexcept>
#include <string>

#include "store/pg_connection.hpp"
#include "store/pg_store.hpp"

namespace litchi {
namespace {

// Step N takes the schema from version N to N+1.
constexpr const char* kMigrations[] = {
    // 0 -> 1: users, tokens, jobs, items (with leases), the event log.
    R"sql(
-- The log's epoch and the schema version.
CREATE TABLE IF NOT EXISTS litchi_meta (key text PRIMARY KEY, value text NOT NULL);
INSERT INTO litchi_meta VALUES ('epoch', md5(random()::text || clock_timestamp()::text))
    ON CONFLICT DO NOTHING;

-- event_pos numbers every log entry of the user, event_seq the job-level ones
-- (protocol v1's seq); both advance in the transaction that logs the entry,
-- under this row's lock, so a user's entries are numbered in commit order.
CREATE TABLE users (
    id            bigserial PRIMARY KEY,
    name          text NOT NULL UNIQUE,
    password_hash text NOT NULL,            -- crypto_pwhash_str (argon2id)
    created       bigint NOT NULL,          -- ms since epoch
    event_pos     bigint NOT NULL DEFAULT 0,
    event_seq     bigint NOT NULL DEFAULT 0
);

-- Only the SHA-256 of a token is stored.
CREATE TABLE tokens (
    id        bigserial PRIMARY KEY,
    user_id   bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    hash      text NOT NULL UNIQUE,
    kind      text NOT NULL CHECK (kind IN ('api', 'session')),
    created   bigint NOT NULL,
    last_used bigint,
    expires   bigint,
    revoked   bigint
);
CREATE INDEX tokens_user ON tokens(user_id);

-- Counters are maintained in the same transaction as every item transition.
-- Ids come from a sequence and are never reused. rate/eta are computed when a
-- progress entry is logged (every node shows the same numbers); progress_at
-- and progress_pending coalesce progress entries cluster-wide.
CREATE TABLE jobs (
    id               bigserial PRIMARY KEY,
    user_id          bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name             text NOT NULL,
    state            text NOT NULL CHECK (state IN ('queued','running','paused','done','cancelled')),
    created          bigint NOT NULL,
    updated          bigint NOT NULL,
    total            bigint NOT NULL DEFAULT 0,
    queued           bigint NOT NULL DEFAULT 0,
    active           bigint NOT NULL DEFAULT 0,
    done             bigint NOT NULL DEFAULT 0,
    failed           bigint NOT NULL DEFAULT 0,
    cancelled        bigint NOT NULL DEFAULT 0,
    bytes            bigint NOT NULL DEFAULT 0,
    rate             double precision NOT NULL DEFAULT 0,
    eta              double precision,
    rate_at          bigint NOT NULL DEFAULT 0,  -- when rate was last computed
    rate_finished    bigint NOT NULL DEFAULT 0,  -- done + failed then
    progress_at      bigint NOT NULL DEFAULT 0,  -- when the last progress entry was logged
    progress_pending boolean NOT NULL DEFAULT false,
    -- The job's item ids (a contiguous block): an unfiltered page of items
    -- is a primary-key range scan.
    first_item       bigint NOT NULL DEFAULT 0,
    last_item        bigint NOT NULL DEFAULT 0
);
CREATE INDEX jobs_user ON jobs(user_id, id);
CREATE INDEX jobs_runnable ON jobs(user_id, id)
    WHERE state IN ('queued', 'running') AND queued > 0;
CREATE INDEX jobs_progress_pending ON jobs(progress_at) WHERE progress_pending;

-- An active item is leased: `node` claimed it under `lease_id` (from the
-- lease_ids sequence, fresh per claim) until `lease_until` (ms). Results are
-- applied only WHERE state = 'active' AND lease_id = the claim's id.
-- A job's items are written by one COPY with ids reserved as a block from
-- items_id_seq (contiguous). No foreign key to jobs: its per-row check would
-- double the cost of a million-line job; deleting a job deletes its items.
CREATE TABLE items (
    id          bigserial PRIMARY KEY,
    job_id      bigint NOT NULL,
    position    bigint NOT NULL,
    url         text NOT NULL,
    state       text NOT NULL,
    reason      text,
    http_status integer,
    sha256      text,
    bytes       bigint,
    width       integer,
    height      integer,
    format      text,
    attempts    integer NOT NULL DEFAULT 0,
    updated     bigint NOT NULL,
    node        text,
    lease_id    bigint,
    lease_until bigint
);
CREATE INDEX items_job_state ON items(job_id, state, id);
CREATE INDEX items_sha256 ON items(sha256) WHERE sha256 IS NOT NULL;
CREATE INDEX items_lease ON items(lease_until) WHERE state = 'active';
CREATE INDEX items_node ON items(node) WHERE state = 'active';
CREATE SEQUENCE lease_ids;

-- The event log (store/event_log.hpp). body: the job or item as the store's
-- codec writes it (pg_event_codec.hpp). No foreign keys: entries outlive
-- deleted jobs until pruned.
CREATE TABLE events (
    user_id bigint NOT NULL,
    pos     bigint NOT NULL,
    seq     bigint NOT NULL DEFAULT 0,   -- 0 for item-level entries
    kind    smallint NOT NULL,           -- LoggedKind
    job_id  bigint NOT NULL,
    at      bigint NOT NULL,             -- ms since epoch
    body    text NOT NULL,
    PRIMARY KEY (user_id, pos)
);
CREATE INDEX events_at ON events(at);
)sql",
    // 1 -> 2: indexes shaped for the queue (measured with bench/cluster's
    // litchi_queue_bench; see docs/benchmarks.md).
    R"sql(
-- Claims read the head of each job's queued items. A partial index holds
-- exactly those (an item leaves it when claimed), so the claim never walks
-- past finished items, whatever the planner's statistics say about the job.
CREATE INDEX items_queued ON items(job_id, id) WHERE state = 'queued';
-- No index on (job_id, state): a job's items are the primary-key range of the
-- id block create_job reserved (jobs.first_item..last_item), which is how the
-- store reads "the items of job J". The states a job's work looks up alone
-- have partial indexes: queued (above), failed (retry), active (below). One
-- b-tree fewer for every item a job adds and every change of its state.
DROP INDEX items_job_state;
CREATE INDEX items_failed ON items(job_id, id) WHERE state = 'failed';
-- One index for the leased items instead of two: renewals and a node's
-- requeue look them up by node, expiry scans them all (few: what the nodes
-- hold right now). Each claim writes one index entry fewer.
DROP INDEX items_lease;
DROP INDEX items_node;
CREATE INDEX items_active ON items(node, lease_until) WHERE state = 'active';
-- The log only grows at its end, in `at` order: a BRIN index finds what to
-- prune at a fraction of a b-tree's cost per insert.
DROP INDEX events_at;
CREATE INDEX events_at ON events USING brin(at);
)sql",
    // 2 -> 3: tokens have a name (API tokens made in the web app) and a third
    // kind, 'link': the first-start login link, good for one exchange into a
    // session (user_store.hpp). Job ids already come from a sequence (never
    // reused), unlike SQLite's schema 2.
    R"sql(
ALTER TABLE tokens ADD COLUMN name text;
ALTER TABLE tokens DROP CONSTRAINT tokens_kind_check;
ALTER TABLE tokens ADD CONSTRAINT tokens_kind_check CHECK (kind IN ('api', 'session', 'link'));
)sql",
    // 3 -> 4: per-job request options and completion webhooks (see
    // sqlite_store.cpp's step 3 -> 4: the same columns, outbox and trigger).
    // Nodes claim deliveries with FOR UPDATE SKIP LOCKED and a lease, so two
    // nodes never send the same one at once.
    R"sql(
ALTER TABLE jobs ADD COLUMN options text;
ALTER TABLE jobs ADD COLUMN webhook_events text;
CREATE TABLE webhook_deliveries (
    id          bigserial PRIMARY KEY,
    job_id      bigint NOT NULL,
    delivery    text NOT NULL UNIQUE,
    event       text NOT NULL,
    state       text NOT NULL DEFAULT 'pending',
    attempts    integer NOT NULL DEFAULT 0,
    created     bigint NOT NULL,
    updated     bigint NOT NULL,
    next_at     bigint NOT NULL DEFAULT 0,
    lease_until bigint NOT NULL DEFAULT 0,
    body        text,
    http_status integer,
    error       text
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries(next_at) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_job ON webhook_deliveries(job_id, id);
CREATE FUNCTION litchi_job_webhook() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
    ev text := CASE WHEN NEW.state = 'cancelled' THEN 'cancelled'
                    WHEN NEW.failed > 0 THEN 'failed' ELSE 'done' END;
BEGIN
    IF position(',' || ev || ',' IN NEW.webhook_events) > 0 THEN
        INSERT INTO webhook_deliveries(job_id, delivery, event, created, updated)
        VALUES (NEW.id, md5(random()::text || clock_timestamp()::text || NEW.id::text), ev,
                NEW.updated, NEW.updated);
    END IF;
    RETURN NULL;
END
$fn$;
CREATE TRIGGER jobs_webhook_on_end AFTER UPDATE OF state ON jobs FOR EACH ROW
    WHEN (NEW.webhook_events IS NOT NULL AND OLD.state IS DISTINCT FROM NEW.state
          AND NEW.state IN ('done', 'cancelled'))
    EXECUTE FUNCTION litchi_job_webhook();
-- A job whose every line was refused is created done.
CREATE TRIGGER jobs_webhook_on_create AFTER INSERT ON jobs FOR EACH ROW
    WHEN (NEW.webhook_events IS NOT NULL AND NEW.state IN ('done', 'cancelled'))
    EXECUTE FUNCTION litchi_job_webhook();
)sql",
    // 4 -> 5: claims find a job's queued items from a cursor over the
    // primary key instead of a partial index of every queued item: a new
    // item is written to the table and its primary key only (one b-tree
    // fewer: a million-line job is ~0.7 s less COPY). claim_from: no item
    // of the job below it is queued, except under a claim in progress;
    // every change that puts items back in the queue lowers it and bumps
    // requeue_seq, and a claim advances it past what it took only if
    // requeue_seq did not move meanwhile (pg_job_store.cpp, claims).
    R"sql(
ALTER TABLE jobs ADD COLUMN claim_from bigint NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN requeue_seq bigint NOT NULL DEFAULT 0;
DROP INDEX items_queued;
)sql",
};

constexpr int kMigrationCount = static_cast<int>(std::size(kMigrations));
static_assert(kMigrationCount == kPgSchemaVersion, "one migration step per schema version");

// Any constant: the advisory lock nodes take while migrating.
constexpr const char* kMigrationLock = "7311906424510531";

}  // namespace

void migrate_pg(pg::Pool& pool) {
    pool.transaction([](pg::Connection& conn) {
        conn.exec(std::string("SELECT pg_advisory_xact_lock(") + kMigrationLock + ")");
        conn.exec(
            "CREATE TABLE IF NOT EXISTS litchi_meta (key text PRIMARY KEY, value text NOT NULL)");
        auto row = conn.exec("SELECT value FROM litchi_meta WHERE key = 'schema_version'");
        int version = row.rows() ? std::stoi(std::string(row.text(0, 0))) : 0;
        if (version > kPgSchemaVersion)
            throw std::runtime_error("the database has schema version " + std::to_string(version) +
                                     "; this Litchi knows up to " +
                                     std::to_string(kPgSchemaVersion));
        for (; version < kPgSchemaVersion; ++version) conn.exec(kMigrations[version]);
        conn.exec(
            "INSERT INTO litchi_meta VALUES ('schema_version', $1) "
            "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            pg::Params().add(std::to_string(kPgSchemaVersion)));
    });
}

}  // namespace litchi
