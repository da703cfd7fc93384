#!/usr/bin/env bash
# pgshift demo: the whole migration on two local PostgreSQL 15 clusters. Installs
# dependencies, builds pgshift, starts a "source" and a "target" cluster (the target speaks
# TLS with a CA made here, like RDS), puts pgshift in front of them, then:
#   1. keeps the target in sync with logical replication (pgshift sync check / start),
#   2. moves the read split 0 -> 50 -> 100 % and counts which side answered keyed reads,
#   3. cuts over to the target while a ledger writer keeps writing through pgshift, and
#      checks that every acknowledged write is on the target (and pgshift verify),
#   4. rolls back to the source under the same load, checks again, and cuts over again,
# then shuts everything down.
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
# The application's schema exists on the source only: `sync start --copy-schema` copies it.
psql_src shop -c "CREATE TABLE orders (id bigserial PRIMARY KEY, user_id int NOT NULL,
  amount numeric NOT NULL, created_at timestamptz DEFAULT now());
  CREATE TABLE ledger (id bigint PRIMARY KEY, writer text NOT NULL);"
psql_src shop -q -c "INSERT INTO orders (user_id, amount)
  SELECT (g % 100) + 1, (g % 50) + 0.99 FROM generate_series(1, 2000) g"
# marker: one row naming its side, so a read through pgshift shows which side answered it.
# It is not in sync.tables, so each side keeps its own row.
psql_src shop -c "CREATE TABLE marker (side text NOT NULL); INSERT INTO marker VALUES ('source')"

echo "== starting pgshift on 127.0.0.1:$PROXY_PORT (control plane: the target database)"
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
    pool: { mode: transaction, size: 20 }
    sync: { mode: logical, tables: [orders, ledger] }
YAML
"$PGSHIFT" check-config "$RUN/pgshift.yaml"

echo "== 1. logical sync: pgshift sync check, then sync start --copy-schema"
"$PGSHIFT" sync check shop --config "$RUN/pgshift.yaml" | sed 's/^/   /'
"$PGSHIFT" sync start shop --config "$RUN/pgshift.yaml" --copy-schema | sed 's/^/   /'
psql_tgt shop -c "CREATE TABLE IF NOT EXISTS marker (side text NOT NULL);
  DELETE FROM marker; INSERT INTO marker VALUES ('target')"

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
echo "== workload: 2,000 more orders written through pgshift, and pgbench reads"
psql -X -q "$APP" -c "INSERT INTO orders (user_id, amount) SELECT (g % 100) + 1, (g % 50) + 0.99 FROM generate_series(1, 2000) g"
cat >"$RUN/read.sql" <<'SQL'
\set uid random(1, 100)
SELECT count(*), sum(amount) FROM orders WHERE user_id = :uid;
SQL
pgbench -n -M extended -c 8 -j 2 -T 3 -f "$RUN/read.sql" "$APP" 2>&1 | grep -E 'tps|failed|latency average'
# The admin API, through pgshift's own client (docs/admin-api.md).
ctl() { "$PGSHIFT" ctl --url "http://127.0.0.1:$ADMIN_PORT" --token-file "$RUN/admin-token" "$@"; }
src_count() { PGPASSWORD=$PASSWORD psql_src shop -Atc "SELECT count(*) FROM $1"; }
tgt_count() { PGPASSWORD=$PASSWORD psql_tgt shop -Atc "SELECT count(*) FROM $1"; }
for _ in $(seq 1 100); do [[ $(tgt_count orders) == "$(src_count orders)" ]] && break; sleep 0.1; done
echo "== rows per side, kept in sync by logical replication:"
echo "   source orders: $(src_count orders), target orders: $(tgt_count orders)"
"$PGSHIFT" sync status shop --config "$RUN/pgshift.yaml" | sed 's/^/   /'

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
echo "== 2. read split: at each step \`pgshift ctl set-read-percent shop N\`, then $READS reads"
echo "   through pgshift, one per user id (/* user_id='N' */); the marker row says which side"
echo "   answered"
printf '   %12s | %6s | %6s\n' read_percent source target
for pct in 0 50 100; do
  ctl set-read-percent shop "$pct" >/dev/null
  answers=$(psql -X -At -f "$RUN/keyed.sql" "$APP")
  printf '   %12s | %6s | %6s\n' "$pct %" \
    "$(grep -cx source <<<"$answers" || true)" "$(grep -cx target <<<"$answers" || true)"
done
echo "== read your writes at 100 %: user 7 writes an order, then users 7 and 8 read; user 7"
echo "   reads from the source until the target has applied a lag marker written after it"
psql -X -q "$APP" -c "INSERT INTO orders (user_id, amount) VALUES (7, 9.99) /* user_id='7' */"
printf '   user 7 -> %s, user 8 -> %s\n' \
  "$(psql -X -At "$APP" -c "SELECT side FROM marker /* user_id='7' */")" \
  "$(psql -X -At "$APP" -c "SELECT side FROM marker /* user_id='8' */")"
ctl set-read-percent shop 0 >/dev/null

# The ledger writer: unique ids through pgshift, one autocommit INSERT each, every
# acknowledged id logged; errors counted, not hidden. Runs until the stop file appears.
cat >"$RUN/ledger.py" <<'PY'
import sys, os, time, psycopg2
dsn, first, ack_path, stop_path = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
conn, acked, errors, longest = None, 0, 0, 0.0
with open(ack_path, "w") as log:
    i = first
    while not os.path.exists(stop_path):
        try:
            if conn is None:
                conn = psycopg2.connect(dsn)
                conn.autocommit = True
            t = time.monotonic()
            conn.cursor().execute("INSERT INTO ledger (id, writer) VALUES (%s, 'demo')", (i,))
            longest = max(longest, time.monotonic() - t)
            log.write(f"{i}\n"); log.flush(); acked += 1
        except psycopg2.Error as e:
            errors += 1
            print(f"   ledger: id {i}: {e.pgcode} {str(e).strip()}", file=sys.stderr)
            conn = None
        i += 1
print(f"{acked} {errors} {longest * 1000:.0f}")
PY
# missing SIDE ACKFILE: acknowledged ids that SIDE does not have.
missing() {
  local fn=psql_src; [[ $1 == target ]] && fn=psql_tgt
  PGPASSWORD=$PASSWORD "$fn" shop -At -c "CREATE TEMP TABLE acked (id bigint)" \
    -c "COPY acked FROM STDIN" \
    -c "SELECT count(*) FROM acked a LEFT JOIN ledger l USING (id) WHERE l.id IS NULL" \
    <"$2" | tail -n 1
}
# switch OPERATION SIDE FIRST_ID: runs the operation while the ledger writer writes, then
# checks every acknowledged id on SIDE and verifies source = target.
switch() {
  local op=$1 side=$2 first=$3 stop="$RUN/stop-$1-$3" acks="$RUN/acks-$1-$3"
  # The switch needs a clean verify run first (docs/cutover.md, preconditions).
  "$PGSHIFT" verify shop --config "$RUN/pgshift.yaml" | tail -n 2 | sed 's/^/   before: /'
  python3 "$RUN/ledger.py" "$APP" "$first" "$acks" "$stop" >"$RUN/ledger-$op-$first.out" &
  local writer=$!
  for _ in $(seq 1 100); do [[ -s $acks ]] && break; sleep 0.05; done
  ctl "$op" shop | sed 's/^/   /'
  # A few more writes after the switch, then stop the writer.
  local n; n=$(wc -l <"$acks"); for _ in $(seq 1 100); do (( $(wc -l <"$acks") > n + 50 )) && break; sleep 0.05; done
  touch "$stop"; wait "$writer"
  read -r acked errors longest <"$RUN/ledger-$op-$first.out"
  for _ in $(seq 1 100); do [[ $(tgt_count ledger) == "$(src_count ledger)" ]] && break; sleep 0.1; done
  echo "   ledger writer: $acked writes acknowledged, $errors errors, longest write ${longest} ms;"
  echo "   acknowledged ids missing on the $side: $(missing "$side" "$acks")"
  "$PGSHIFT" verify shop --config "$RUN/pgshift.yaml" | tail -n 2 | sed 's/^/   after: /'
}
echo "== 3. cutover to the target under load (pgshift ctl cutover shop)"
switch cutover target 1
echo "== 4. rollback to the source under load (pgshift ctl rollback shop)"
switch rollback source 1000000
echo "== 5. cutover again"
switch cutover target 2000000
echo "   writes now go to the target; rows per side:"
echo "   source ledger: $(src_count ledger), target ledger: $(tgt_count ledger)"
ctl routes | sed 's/^/   /'
echo "== pgshift log (last lines)"
tail -n 5 "$RUN/pgshift.log"
echo "== shutting down (SIGTERM drains pgshift)"
