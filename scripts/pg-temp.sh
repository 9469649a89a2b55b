#!/usr/bin/env bash
# Throwaway PostgreSQL 15 servers for tests: each lives entirely in one folder
# (data, unix socket, log), listens on 127.0.0.1 only, on a free port, and is
# gone with its folder after `stop`. The system cluster Debian may have made
# (15/main, port 5432) is neither used nor touched.
#
#   pg-temp.sh start DIR [--owner PID]   make a cluster in DIR (new or empty), start,
#                                        create database `litchi`, print its URI
#                                        (postgresql://postgres@127.0.0.1:PORT/litchi)
#                                        on stdout and write it to DIR/url.
#                                        --owner: also stop the server and remove
#                                        DIR once process PID has exited, so a test
#                                        binary killed by a timeout leaks nothing.
#   pg-temp.sh restart DIR               stop (fast) if running, start again on the
#                                        same port; prints the URI again.
#   pg-temp.sh halt DIR                  stop it (fast: clients are disconnected) and
#                                        keep DIR; `restart` starts it again.
#   pg-temp.sh kill DIR                  crash it: SIGKILL the postmaster and all of
#                                        its children (DIR stays; `restart` recovers).
#   pg-temp.sh stop DIR                  stop it (immediate) and remove DIR. A DIR
#                                        that is already gone is fine.
#
# Run as root (CI, sessions) the server runs as the `postgres` user (initdb
# refuses root), which then owns DIR; DIR's parent folders must be searchable
# by it (anything under /tmp is). Run as another user, it runs as that user.
# Messages go to stderr; stdout carries only the URI.
#
# Test settings, not production ones: trust authentication, and fsync,
# synchronous_commit and full_page_writes off. Without them a commit would wait
# for the disk; what is lost is safety against a crash of the *machine* (an
# OS crash or power cut can corrupt the cluster). A crash of the server itself
# (`kill`) is still recovered from the WAL on the next start, as in production.
set -euo pipefail

PGBIN=${LITCHI_PGBIN:-/usr/lib/postgresql/15/bin}
TIMEOUT=${LITCHI_PG_TIMEOUT:-60} # seconds for a start, stop or readiness wait
MARKER=.litchi-pg-temp           # `stop` removes only folders that carry it
SELF=$(realpath "$0")

die() {
    echo "pg-temp.sh: $*" >&2
    exit 1
}

usage() { die "usage: pg-temp.sh start DIR [--owner PID] | restart DIR | halt DIR | kill DIR | stop DIR"; }

# libpq reads these; a developer's own settings must not redirect the tests.
unset PGHOST PGHOSTADDR PGPORT PGDATABASE PGUSER PGPASSWORD PGSERVICE PGSERVICEFILE PGDATA PGOPTIONS \
    PGSSLMODE PGPASSFILE

(($# >= 2)) || usage
cmd=$1
DIR=$(realpath -m -- "$2")
shift 2
# The postgres user may not be able to enter the caller's working directory.
cd /

as_owner() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

need_binaries() {
    local bin
    for bin in initdb pg_ctl pg_isready createdb; do
        [ -x "$PGBIN/$bin" ] ||
            die "PostgreSQL 15 server binaries not found in $PGBIN: install them with 'scripts/install-deps.sh test' (as root; make test does)"
    done
    if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
        die "running as root but there is no 'postgres' user to run the server as (is postgresql-15 installed?)"
    fi
}

need_ours() {
    [ -e "$DIR/$MARKER" ] || die "$DIR was not made by 'pg-temp.sh start' (no $MARKER in it)"
}

port() { cat "$DIR/port"; }
url() { echo "postgresql://postgres@127.0.0.1:$(port)/litchi"; }

# Alive and not a zombie (a killed postmaster's parent may never reap it).
alive() {
    local state
    state=$(ps -o stat= -p "$1" 2>/dev/null) && [[ $state != Z* ]]
}

postmaster_pid() {
    local pid
    [ -f "$DIR/data/postmaster.pid" ] && pid=$(head -n1 "$DIR/data/postmaster.pid") && alive "$pid" && echo "$pid"
}

# Starts the server on $(port); fails if the postmaster could not come up
# (pg_ctl -w notices a postmaster that exited, e.g. on a taken port).
server_start() {
    as_owner "$PGBIN/pg_ctl" start -D "$DIR/data" -l "$DIR/server.log" -o "-p $(port)" -w -t "$TIMEOUT" \
        >/dev/null
}

# Polls until the server accepts TCP connections, with a deadline.
wait_ready() {
    local deadline=$((SECONDS + TIMEOUT))
    until "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$(port)" -U postgres -d postgres; do
        ((SECONDS < deadline)) || die "server in $DIR does not accept connections after ${TIMEOUT}s; see $DIR/server.log"
        sleep 0.05
    done
}

# initdb takes seconds and each unit test process starts its own server, so
# a pristine initdb'd data folder (never started) is kept per PostgreSQL
# version and server user, and copied. Made under a lock, published by rename:
# parallel starts see all of it or none of it.
template_data() {
    local version number uid
    version=$("$PGBIN/initdb" --version) # initdb (PostgreSQL) 15.18 (Debian ...)
    number=${version#*) }
    uid=$(if [ "$(id -u)" -eq 0 ]; then id -u postgres; else id -u; fi)
    TEMPLATE=/tmp/litchi-pg-template-${number%% *}-$uid
    if [ "$(cat "$TEMPLATE/.initdb-version" 2>/dev/null)" = "$version" ]; then return; fi
    (
        flock 9
        if [ "$(cat "$TEMPLATE/.initdb-version" 2>/dev/null)" = "$version" ]; then exit 0; fi
        rm -rf "$TEMPLATE" "$TEMPLATE".tmp.*
        if ! as_owner "$PGBIN/initdb" -D "$TEMPLATE.tmp.$$" -U postgres -A trust -E UTF8 --locale=C --no-sync \
            --no-instructions >"$DIR/initdb.log" 2>&1; then
            cat "$DIR/initdb.log" >&2
            die "initdb into $TEMPLATE.tmp.$$ failed"
        fi
        echo "$version" | as_owner tee "$TEMPLATE.tmp.$$/.initdb-version" >/dev/null
        mv "$TEMPLATE.tmp.$$" "$TEMPLATE"
    ) 9>>"$TEMPLATE.lock"
}

# A port nothing answers on, below Linux's ephemeral range (32768+) so that
# outgoing connections do not take it meanwhile. A race with another starter
# is caught when the postmaster cannot bind (see cmd_start).
free_port() {
    local port
    while :; do
        port=$((20000 + RANDOM % 12000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return
        fi
    done
}

cmd_start() {
    local owner=""
    while (($#)); do
        case $1 in
        --owner)
            owner=${2:?--owner needs a PID}
            shift 2
            ;;
        *) usage ;;
        esac
    done
    need_binaries
    if [ -n "$owner" ]; then kill -0 "$owner" 2>/dev/null || die "--owner $owner: no such process"; fi
    [[ $DIR != *"'"* ]] || die "DIR must not contain a quote: $DIR"
    # A unix socket path is at most 107 bytes: DIR/.s.PGSQL.PORT must fit.
    ((${#DIR} <= 90)) || die "DIR is too long for a unix socket path (keep it under 90 characters): $DIR"
    if [ -e "$DIR" ] && [ -n "$(ls -A "$DIR")" ]; then die "$DIR exists and is not empty"; fi
    mkdir -p "$DIR"
    touch "$DIR/$MARKER"
    # A start that fails half-way leaves no server running and no folder.
    trap '(cmd_stop) || true' EXIT
    chmod 700 "$DIR"
    if [ "$(id -u)" -eq 0 ]; then chown -R postgres: "$DIR"; fi
    as_owner test -w "$DIR" ||
        die "the postgres user cannot write $DIR: its parent folders must be searchable by others (use a folder under /tmp)"

    template_data
    as_owner cp -a "$TEMPLATE" "$DIR/data"
    cat >>"$DIR/data/postgresql.conf" <<EOF

# pg-temp.sh (test settings; see the script's header)
listen_addresses = '127.0.0.1'
unix_socket_directories = '$DIR'
max_connections = 200
shared_buffers = 32MB
fsync = off
synchronous_commit = off
full_page_writes = off
EOF

    # Another process may take the free port before the postmaster binds it
    # (parallel test binaries do this all at once): then try another port.
    local attempt logged
    for attempt in 1 2 3 4 5; do
        free_port >"$DIR/port"
        logged=$(stat -c %s "$DIR/server.log" 2>/dev/null || echo 0)
        if server_start; then break; fi
        if ((attempt < 5)) && tail -c +$((logged + 1)) "$DIR/server.log" 2>/dev/null |
            grep -q -e 'could not bind' -e 'could not create any TCP/IP sockets'; then
            echo "pg-temp.sh: port $(port) was taken, trying another" >&2
            continue
        fi
        tail -n 20 "$DIR/server.log" >&2 || true
        die "could not start PostgreSQL in $DIR (log: $DIR/server.log)"
    done
    wait_ready
    "$PGBIN/createdb" -h 127.0.0.1 -p "$(port)" -U postgres litchi || die "could not create database litchi"

    if [ -n "$owner" ]; then
        # Own session (so a signal to the owner's process group spares it),
        # no inherited descriptors (a caller reading our stdout until EOF
        # must not wait for it). tail --pid returns once the owner is gone.
        # shellcheck disable=SC2016 # expanded by the watcher's shell
        setsid bash -c 'tail --pid="$1" -f /dev/null; exec bash "$2" stop "$3"' watcher "$owner" "$SELF" "$DIR" \
            </dev/null >/dev/null 2>&1 &
        echo $! >"$DIR/watcher.pid"
    fi
    url | tee "$DIR/url"
    trap - EXIT
}

cmd_restart() {
    (($# == 0)) || usage
    need_binaries
    need_ours
    if [ -n "$(postmaster_pid)" ]; then
        as_owner "$PGBIN/pg_ctl" stop -D "$DIR/data" -m fast -w -t "$TIMEOUT" >/dev/null
    fi
    server_start || {
        tail -n 20 "$DIR/server.log" >&2 || true
        die "could not restart PostgreSQL in $DIR on port $(port) (log: $DIR/server.log)"
    }
    wait_ready
    url
}

cmd_halt() {
    (($# == 0)) || usage
    need_binaries
    need_ours
    if [ -n "$(postmaster_pid)" ]; then
        as_owner "$PGBIN/pg_ctl" stop -D "$DIR/data" -m fast -w -t "$TIMEOUT" >/dev/null
    fi
}

cmd_kill() {
    (($# == 0)) || usage
    need_ours
    local pid children p deadline=$((SECONDS + TIMEOUT))
    pid=$(postmaster_pid) || die "no server is running in $DIR"
    children=$(ps -o pid= --ppid "$pid" || true)
    kill -KILL "$pid"
    # shellcheck disable=SC2086 # one pid per word
    [ -z "$children" ] || kill -KILL $children 2>/dev/null || true
    # Every backend must be gone before a restart can reuse the shared memory.
    for p in $pid $children; do
        while alive "$p"; do
            ((SECONDS < deadline)) || die "process $p of the server in $DIR survives SIGKILL"
            sleep 0.02
        done
    done
    # Where PID 1 does not reap orphans (containers), the dead postmaster stays
    # a zombie, and PostgreSQL would take the lock files naming it for a live
    # server's and refuse to start: they are stale now that all are dead.
    rm -f "$DIR/data/postmaster.pid" "$DIR"/.s.PGSQL.*.lock
}

cmd_stop() {
    (($# == 0)) || usage
    [ -e "$DIR" ] || exit 0
    need_ours
    local watcher
    # The watcher runs `stop` itself when its owner exits: spare it then.
    if watcher=$(cat "$DIR/watcher.pid" 2>/dev/null) && [ "$watcher" != $$ ] && alive "$watcher" &&
        grep -qF "$DIR" "/proc/$watcher/cmdline" 2>/dev/null; then
        kill -- "-$watcher" 2>/dev/null || true # its process group: bash and tail
    fi
    if [ -n "$(postmaster_pid)" ]; then
        as_owner "$PGBIN/pg_ctl" stop -D "$DIR/data" -m immediate -w -t "$TIMEOUT" >/dev/null ||
            cmd_kill # removing the folder under a live server would leave it running
    fi
    rm -rf "$DIR"
}

case $cmd in
start) cmd_start "$@" ;;
restart) cmd_restart "$@" ;;
halt) cmd_halt "$@" ;;
kill) cmd_kill "$@" ;;
stop) cmd_stop "$@" ;;
*) usage ;;
esac
