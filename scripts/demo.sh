#!/usr/bin/env bash
# pgshift demo: installs dependencies, builds pgshift, starts a local "source" and a local
# "target" PostgreSQL 15 cluster (the target speaks TLS with a CA made here, like RDS),
# starts pgshift in front of them and runs a short workload through it, then moves the
# read split 0 -> 50 -> 100 % through the admin API (pgshift ctl) and counts which side
# answered keyed reads at each step, then shuts everything down.
# Usage: scripts/demo.sh [--no-install]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

if [[ "${1:-}" != "--no-install" ]]; then
  bash scripts/install-deps.sh
fi

if [[ -n "${PGSHIFT_BIN:-}" ]]; then
  PGSHIFT=$PGSHIFT_BIN
else
  echo "== building pgshift (Release)"
  cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release -DPGSHIFT_TESTS=OFF >/dev/null
  ninja -C build-release -j2 pgshift
  PGSHIFT=$ROOT/build-release/proxy/pgshift
fi

PGBIN=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
RUN=$(mktemp -d /tmp/pgshift-demo.XXXXXX)
as_pg() { if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[[ $(id -u) -eq 0 ]] && chown postgres "$RUN"
chmod 755 "$RUN"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
SRC_PORT=$(free_port); TGT_PORT=$(free_port); PROXY_PORT=$(free_port); ADMIN_PORT=$(free_port)
PASSWORD=demo-password

PGSHIFT_PID=""
cleanup() {
  set +e
  [[ -n "$PGSHIFT_PID" ]] && kill -TERM "$PGSHIFT_PID" 2>/dev/null && wait "$PGSHIFT_PID" 2>/dev/null
  for c in source target; do
    [[ -d "$RUN/$c" ]] && as_pg "$PGBIN/pg_ctl" -D "$RUN/$c" -m fast stop >/dev/null 2>&1
  done
  rm -rf "$RUN"
}
trap cleanup EXIT

echo "== generating a CA and a server certificate for the target (like the RDS CA)"
bash scripts/gen-certs.sh "$RUN/certs" localhost 127.0.0.1 >/dev/null
[[ $(id -u) -eq 0 ]] && chown -R postgres "$RUN/certs"

start_cluster() {  # name port tls(on|off)
  local name=$1 port=$2 tls=$3
  echo "$PASSWORD" >"$RUN/pwfile"; [[ $(id -u) -eq 0 ]] && chown postgres "$RUN/pwfile"
  as_pg "$PGBIN/initdb" -D "$RUN/$name" -U postgres --auth=scram-sha-256 \
    --pwfile="$RUN/pwfile" >/dev/null
  {
    echo "port = $port"
    echo "listen_addresses = '127.0.0.1'"
    echo "unix_socket_directories = '$RUN'"
    echo "wal_level = logical"
    if [[ $tls == on ]]; then
      echo "ssl = on"
      echo "ssl_cert_file = '$RUN/certs/server.crt'"
      echo "ssl_key_file = '$RUN/certs/server.key'"
    fi
  } >>"$RUN/$name/postgresql.conf"
  as_pg "$PGBIN/pg_ctl" -D "$RUN/$name" -l "$RUN/$name.log" -w start >/dev/null
  echo "   $name cluster on 127.0.0.1:$port (tls $tls)"
}
echo "== starting source and target PostgreSQL 15 clusters"
start_cluster source "$SRC_PORT" off
start_cluster target "$TGT_PORT" on

export PGPASSWORD=$PASSWORD
# psql_src DB ARGS... / psql_tgt DB ARGS...: superuser sessions straight to each cluster.
psql_src() { local db=$1; shift; psql -X -q "host=127.0.0.1 port=$SRC_PORT user=postgres dbname=$db" "$@"; }
psql_tgt() { local db=$1; shift; psql -X -q "host=localhost port=$TGT_PORT user=postgres dbname=$db sslmode=verify-full sslrootcert=$RUN/certs/ca.crt" "$@"; }
for side in src tgt; do
  "psql_$side" postgres -c "CREATE DATABASE shop"
done
SCHEMA="CREATE TABLE orders (id bigserial PRIMARY KEY, user_id int NOT NULL, amount numeric NOT NULL, created_at timestamptz DEFAULT now());"
psql_src shop -c "$SCHEMA"
psql_tgt shop -c "$SCHEMA"
# marker: one row naming its side, so a read through pgshift shows which side answered it.
psql_src shop -c "CREATE TABLE marker (side text NOT NULL); INSERT INTO marker VALUES ('source')"
psql_tgt shop -c "CREATE TABLE marker (side text NOT NULL); INSERT INTO marker VALUES ('target')"

echo "== starting pgshift on 127.0.0.1:$PROXY_PORT"
echo '"app" "app-secret"' >"$RUN/users.txt"
printf 'demo-admin-token\n' >"$RUN/admin-token"
echo "$PASSWORD" >"$RUN/source-password"
chmod 600 "$RUN/users.txt" "$RUN/admin-token" "$RUN/source-password"
export TARGET_PASSWORD=$PASSWORD
cat >"$RUN/pgshift.yaml" <<YAML
listen: { host: 127.0.0.1, port: $PROXY_PORT }
admin: { host: 127.0.0.1, port: $ADMIN_PORT, token_file: $RUN/admin-token }
client_auth: { method: scram-sha-256, users_file: $RUN/users.txt }
state_file: $RUN/pgshift-state.json
routes:
  - name: shop
    client_database: shop
    source:
      host: 127.0.0.1
      port: $SRC_PORT
      user: postgres
      password: "\${file:$RUN/source-password}"
      tls: { mode: disable }
    target:
      host: localhost
      port: $TGT_PORT
      user: postgres
      password: "\${env:TARGET_PASSWORD}"
      tls: { mode: verify-full, ca_file: $RUN/certs/ca.crt }
    pool: { mode: session, size: 20 }
YAML
"$PGSHIFT" check-config "$RUN/pgshift.yaml"
"$PGSHIFT" --config "$RUN/pgshift.yaml" 2>"$RUN/pgshift.log" &
PGSHIFT_PID=$!
for _ in $(seq 1 100); do
  (echo >"/dev/tcp/127.0.0.1/$PROXY_PORT") 2>/dev/null && break
  kill -0 "$PGSHIFT_PID" 2>/dev/null || { cat "$RUN/pgshift.log"; exit 1; }
  sleep 0.1
done

export PGPASSWORD=app-secret
APP="host=127.0.0.1 port=$PROXY_PORT user=app dbname=shop"
echo "== the application connects to pgshift with: $APP"
psql -X "$APP" -c "SELECT version()" | sed -n 3p
echo "== workload: 2,000 orders from 100 users written through pgshift"
psql -X -q "$APP" -c "INSERT INTO orders (user_id, amount) SELECT (g % 100) + 1, (g % 50) + 0.99 FROM generate_series(1, 2000) g"
cat >"$RUN/read.sql" <<'SQL'
\set uid random(1, 100)
SELECT count(*), sum(amount) FROM orders WHERE user_id = :uid;
SQL
echo "== workload: pgbench, 8 clients x 5 s of reads through pgshift (extended protocol)"
pgbench -n -M extended -c 8 -j 2 -T 5 -f "$RUN/read.sql" "$APP" 2>&1 | grep -E 'tps|failed|latency average'
echo "== rows per side (the target is kept in sync in a later stage of the migration)"
PGPASSWORD=$PASSWORD psql_src shop -Atc "SELECT 'source orders: ' || count(*) FROM orders"
PGPASSWORD=$PASSWORD psql_tgt shop -Atc "SELECT 'target orders: ' || count(*) FROM orders"
# The admin API, through pgshift's own client (docs/admin-api.md).
ctl() { "$PGSHIFT" ctl --url "http://127.0.0.1:$ADMIN_PORT" --token-file "$RUN/admin-token" "$@"; }
target_health() {
  ctl --json route shop 2>/dev/null |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target"]["health"]["status"])' \
    2>/dev/null || true
}
# Split reads go to the target only once the health checker (every 2 s) has seen it work.
for _ in $(seq 1 100); do [[ $(target_health) == healthy ]] && break; sleep 0.1; done
if [[ $(target_health) != healthy ]]; then
  echo "the target never became healthy:"; ctl route shop; exit 1
fi
READS=1000
for i in $(seq 1 "$READS"); do echo "SELECT side FROM marker /* user_id='$i' */;"; done >"$RUN/keyed.sql"
echo "== read split: at each step \`pgshift ctl set-read-percent shop N\`, then $READS reads through"
echo "   pgshift, one per user id (/* user_id='N' */); the marker row says which side answered"
printf '   %12s | %6s | %6s\n' read_percent source target
for pct in 0 50 100; do
  ctl set-read-percent shop "$pct" >/dev/null
  answers=$(psql -X -At -f "$RUN/keyed.sql" "$APP")
  printf '   %12s | %6s | %6s\n' "$pct %" \
    "$(grep -cx source <<<"$answers" || true)" "$(grep -cx target <<<"$answers" || true)"
done
echo "== read your writes at 100 %: user 7 writes an order, then users 7 and 8 read; user 7"
echo "   stays on the source for read_split.read_your_writes_window_ms (default 2 s)"
psql -X -q "$APP" -c "INSERT INTO orders (user_id, amount) VALUES (7, 9.99) /* user_id='7' */"
printf '   user 7 -> %s, user 8 -> %s\n' \
  "$(psql -X -At "$APP" -c "SELECT side FROM marker /* user_id='7' */")" \
  "$(psql -X -At "$APP" -c "SELECT side FROM marker /* user_id='8' */")"
ctl routes | sed 's/^/   /'
echo "== pgshift log (last lines)"
tail -n 5 "$RUN/pgshift.log"
echo "== shutting down (SIGTERM drains pgshift)"
