#!/usr/bin/env bash
# A throwaway Litchi cluster on this machine, for trying scale-out by hand
# (`make cluster` builds first, then runs this):
#
#   - one PostgreSQL (scripts/pg-temp.sh: its own folder, a free port, 127.0.0.1 only);
#   - N `litchi serve` nodes on 127.0.0.1:BASE .. BASE+N-1, each with its own
#     --data folder, all with the same --db and one shared --blobs folder,
#     named n1 .. nN;
#   - an nginx load balancer on --listen (default 127.0.0.1:9527) spreading
#     requests round robin over the nodes, WebSocket (/api/ws, /api/litchi/TOKEN)
#     and SSE (/api/events) proxied unbuffered, a dead node skipped
#     (proxy_next_upstream);
#   - a user `admin` made with `litchi user add --db`, whose password and
#     login link are printed.
#
# Everything lives in one temporary folder; Ctrl-C (or SIGTERM) stops the
# nodes, nginx and PostgreSQL and removes it (--keep leaves it for a look).
# Not for production: PostgreSQL runs with fsync off (see pg-temp.sh).
#
#   scripts/cluster.sh [--nodes N] [--base-port P] [--listen HOST:PORT] [--lease SEC]
#                      [--bin PATH] [--web DIR] [--keep] [-- EXTRA SERVE FLAGS...]
#   e.g. scripts/cluster.sh -- -j 16 --allow-private
#
# Try it: kill -9 a node (its pid is printed), and watch the web app carry on
# through another one; `kill -STOP` one past its lease and `kill -CONT` it.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
NODES=3
BASE_PORT=9531
LISTEN=127.0.0.1:9527
LEASE=30
BIN=$ROOT/build/release/litchi
WEB=$ROOT/web/dist
KEEP=0
EXTRA=()
START_TIMEOUT=60

die() {
    echo "cluster.sh: $*" >&2
    exit 2
}

while (($#)); do
    case $1 in
    --nodes) NODES=${2:?--nodes needs a number}; shift 2 ;;
    --base-port) BASE_PORT=${2:?--base-port needs a port}; shift 2 ;;
    --listen) LISTEN=${2:?--listen needs HOST:PORT}; shift 2 ;;
    --lease) LEASE=${2:?--lease needs seconds}; shift 2 ;;
    --bin) BIN=${2:?--bin needs a path}; shift 2 ;;
    --web) WEB=${2:?--web needs a folder}; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --) shift; EXTRA=("$@"); break ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
    esac
done
[[ $NODES =~ ^[0-9]+$ ]] && ((NODES >= 1 && NODES <= 32)) || die "--nodes must be 1..32"
[[ $BASE_PORT =~ ^[0-9]+$ ]] && ((BASE_PORT >= 1024 && BASE_PORT + NODES <= 65536)) || die "bad --base-port"
[[ $LISTEN =~ ^[0-9.]+:[0-9]+$ ]] || die "--listen must be IPv4HOST:PORT"
[ -x "$BIN" ] || die "no litchi binary at $BIN (run 'make build', or pass --bin)"
# (Not `| grep -q`: with pipefail, grep leaving early would fail the pipe.)
help=$("$BIN" serve --help 2>&1 || true)
[[ $help == *--db* ]] || die "$BIN has no 'serve --db' (too old a build?)"
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || die "nginx not found: scripts/install-deps.sh cluster (as root)"
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -f "$WEB/index.html" ] || echo "cluster.sh: no web app in $WEB (make web); the nodes serve a placeholder page" >&2

# Short and under /tmp: PostgreSQL's unix socket lives in it, and the
# postgres user (when run as root) must be able to enter it.
TMP=$(mktemp -d /tmp/litchi-cluster.XXXXXX)
chmod 755 "$TMP"
PIDS=()
NGINX_PID=""
PG_STARTED=0

cleanup() {
    local code=$?
    trap - INT TERM EXIT
    echo >&2
    echo "cluster.sh: stopping" >&2
    if [ -n "$NGINX_PID" ]; then kill -TERM "$NGINX_PID" 2>/dev/null || true; fi
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    # A node that stopped itself is reaped here too; one stuck (frozen with
    # SIGSTOP by the user) is continued so it can see the SIGTERM.
    for pid in "${PIDS[@]}"; do kill -CONT "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}" $NGINX_PID; do wait "$pid" 2>/dev/null || true; done
    if ((PG_STARTED)); then "$ROOT/scripts/pg-temp.sh" stop "$TMP/pg" || true; fi
    if ((KEEP)); then
        echo "cluster.sh: kept $TMP (logs: $TMP/n*.log, $TMP/nginx/error.log)" >&2
    else
        # A second pass: a process that was just stopping may have written a log line meanwhile.
        rm -rf "$TMP" 2>/dev/null || rm -rf "$TMP"
    fi
    exit "$code"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- PostgreSQL ---------------------------------------------------------------
echo "cluster.sh: starting PostgreSQL" >&2
DB=$("$ROOT/scripts/pg-temp.sh" start "$TMP/pg" --owner $$)
PG_STARTED=1

# --- the admin user (before any node starts, so none of them makes its own) ---
PASSWORD=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
printf '%s\n' "$PASSWORD" | "$BIN" user add admin --db "$DB" >/dev/null
TOKEN=$("$BIN" token create admin --db "$DB")

# --- the nodes ------------------------------------------------------------------
mkdir -p "$TMP/blobs"
for ((i = 1; i <= NODES; i++)); do
    port=$((BASE_PORT + i - 1))
    "$BIN" serve --listen "127.0.0.1:$port" --data "$TMP/n$i" --db "$DB" --blobs "$TMP/blobs" \
        --node "n$i" --lease "$LEASE" --web "$WEB" "${EXTRA[@]}" \
        >"$TMP/n$i.out" 2>"$TMP/n$i.log" </dev/null &
    PIDS+=($!)
done
deadline=$((SECONDS + START_TIMEOUT))
for ((i = 1; i <= NODES; i++)); do
    until grep -q 'Litchi is listening on' "$TMP/n$i.out" 2>/dev/null; do
        if ! kill -0 "${PIDS[i - 1]}" 2>/dev/null; then
            tail -n 20 "$TMP/n$i.log" >&2
            die "node n$i exited at start (log above)"
        fi
        ((SECONDS < deadline)) || die "node n$i did not start in ${START_TIMEOUT}s (see $TMP/n$i.log)"
        sleep 0.05
    done
done

# --- nginx ----------------------------------------------------------------------
mkdir -p "$TMP/nginx"
{
    echo "# Generated by scripts/cluster.sh: a round-robin load balancer for the nodes."
    echo "worker_processes 1;"
    echo "daemon off;"
    echo "pid $TMP/nginx/nginx.pid;"
    echo "error_log $TMP/nginx/error.log warn;"
    # Workers run as this user: they write the temp folders below.
    echo "user $(id -un) $(id -gn);"
    echo "events { worker_connections 4096; }"
    cat <<EOF
http {
    access_log $TMP/nginx/access.log;
    client_body_temp_path $TMP/nginx/body;
    proxy_temp_path $TMP/nginx/proxy;
    fastcgi_temp_path $TMP/nginx/fastcgi;
    uwsgi_temp_path $TMP/nginx/uwsgi;
    scgi_temp_path $TMP/nginx/scgi;
    # The nodes judge the body size (--max-body, 16 MiB by default) themselves.
    client_max_body_size 0;

    upstream litchi {
        # Round robin. A node that refuses connections is skipped for 3 s.
EOF
    for ((i = 1; i <= NODES; i++)); do
        echo "        server 127.0.0.1:$((BASE_PORT + i - 1)) max_fails=1 fail_timeout=3s;"
    done
    cat <<'EOF'
        keepalive 32;
    }

    server {
EOF
    echo "        listen $LISTEN;"
    cat <<'EOF'
        proxy_http_version 1.1;
        # The nodes compare a browser's Origin with Host: pass the client's.
        proxy_set_header Host $http_host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        # A node that is down (refused, reset, timed out) or answers 502/503:
        # the next one. A POST that already reached a node is never sent twice
        # (no non_idempotent), so a job cannot be created twice.
        proxy_next_upstream error timeout http_502 http_503;
        proxy_next_upstream_tries 3;
        proxy_connect_timeout 2s;

        # The progress WebSocket, on both of its paths. Idle sockets are pinged
        # by the node every --ws-idle-timeout/2 (150 s by default): the read
        # timeout must be longer than that.
        location = /api/ws {
            proxy_pass http://litchi;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_buffering off;
            proxy_read_timeout 1h;
            proxy_send_timeout 1h;
        }
        location /api/litchi/ {
            proxy_pass http://litchi;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_buffering off;
            proxy_read_timeout 1h;
            proxy_send_timeout 1h;
        }
        # Server-Sent Events: every message must go out as it comes.
        location = /api/events {
            proxy_pass http://litchi;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_cache off;
            proxy_read_timeout 1h;
        }
        # The API, images, zips and the web app. Zips and manifests stream.
        location / {
            proxy_pass http://litchi;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_read_timeout 5m;
        }
    }
}
EOF
} >"$TMP/nginx/nginx.conf"
"$NGINX" -t -q -p "$TMP/nginx" -e "$TMP/nginx/error.log" -c "$TMP/nginx/nginx.conf" ||
    die "nginx refused the generated config $TMP/nginx/nginx.conf"
"$NGINX" -p "$TMP/nginx" -e "$TMP/nginx/error.log" -c "$TMP/nginx/nginx.conf" </dev/null &
NGINX_PID=$!
deadline=$((SECONDS + START_TIMEOUT))
until (exec 3<>"/dev/tcp/${LISTEN%:*}/${LISTEN#*:}") 2>/dev/null; do
    kill -0 "$NGINX_PID" 2>/dev/null || die "nginx exited at start: $(tail -n 5 "$TMP/nginx/error.log")"
    ((SECONDS < deadline)) || die "nginx does not listen on $LISTEN after ${START_TIMEOUT}s"
    sleep 0.05
done

cat <<EOF

Litchi cluster: $NODES nodes behind http://$LISTEN/
  database   $DB
  blobs      $TMP/blobs
EOF
for ((i = 1; i <= NODES; i++)); do
    printf '  node n%-3s http://127.0.0.1:%s/  pid %s  log %s\n' "$i" $((BASE_PORT + i - 1)) "${PIDS[i - 1]}" \
        "$TMP/n$i.log"
done
cat <<EOF

Log in as admin with password: $PASSWORD
  or open http://$LISTEN/login#token=$TOKEN
  API token (curl -H "Authorization: Bearer \$TOKEN" http://$LISTEN/api/jobs): $TOKEN
More users: printf '%s\n' PASSWORD | $BIN user add NAME --db $DB
Ctrl-C stops everything.
EOF

# Reports nodes (or nginx) that stop by themselves; the others carry on.
live=("${PIDS[@]}" "$NGINX_PID")
while ((${#live[@]})); do
    gone=""
    set +e
    wait -n -p gone "${live[@]}"
    status=$?
    set -e
    [ -n "$gone" ] || break
    if [ "$gone" = "$NGINX_PID" ]; then
        echo "cluster.sh: nginx exited (status $status): $(tail -n 3 "$TMP/nginx/error.log")" >&2
    else
        echo "cluster.sh: node pid $gone exited (status $status); the others carry on" >&2
    fi
    rest=()
    for pid in "${live[@]}"; do [ "$pid" = "$gone" ] || rest+=("$pid"); done
    live=("${rest[@]}")
done
