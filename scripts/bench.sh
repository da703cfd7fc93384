#!/usr/bin/env bash
# Throughput benchmark, in one run: pgbench against PostgreSQL directly, through PgBouncer
# and through pgshift, interleaved and repeated so machine noise hits all three alike.
# Prints a table of tps, average latency and ratios (pgshift/direct, pgshift/pgbouncer).
#   scripts/bench.sh [--no-build]      env: DURATION (s, default 10), ROUNDS (default 3),
#                                      CLIENTS ("1 16 64"), PROTOCOLS ("simple extended prepared")
# pgshift runs its routes in session mode today (transaction pooling is not in the data
# path yet), so PgBouncer runs in session mode too, with the same pool size, for a fair
# comparison. Results go to docs/benchmarks.md by hand, with this command line.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
CLIENTS=${CLIENTS:-"1 16 64"}
PROTOCOLS=${PROTOCOLS:-"simple extended prepared"}
POOL_SIZE=${POOL_SIZE:-70}

if [[ "${1:-}" != "--no-build" ]]; then
  bash scripts/install-deps.sh >/dev/null
  cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release -DPGSHIFT_TESTS=OFF >/dev/null
  ninja -C build-release -j2 pgshift >/dev/null
fi
PGSHIFT=${PGSHIFT_BIN:-$ROOT/build-release/proxy/pgshift}
PGBIN=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
RUN=$(mktemp -d /tmp/pgshift-bench.XXXXXX)
as_pg() { if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[[ $(id -u) -eq 0 ]] && chown postgres "$RUN"
chmod 755 "$RUN"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PG_PORT=$(free_port); BOUNCER_PORT=$(free_port); SHIFT_PORT=$(free_port)
PIDS=()
cleanup() {
  set +e
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  [[ -d "$RUN/pg" ]] && as_pg "$PGBIN/pg_ctl" -D "$RUN/pg" -m immediate stop >/dev/null 2>&1
  rm -rf "$RUN"
}
trap cleanup EXIT

echo bench-pw >"$RUN/pwfile"; [[ $(id -u) -eq 0 ]] && chown postgres "$RUN/pwfile"
as_pg "$PGBIN/initdb" -D "$RUN/pg" -U postgres --auth=scram-sha-256 --pwfile="$RUN/pwfile" >/dev/null
cat >>"$RUN/pg/postgresql.conf" <<CONF
port = $PG_PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$RUN'
max_connections = 300
shared_buffers = 256MB
fsync = off
synchronous_commit = off
CONF
as_pg "$PGBIN/pg_ctl" -D "$RUN/pg" -l "$RUN/pg.log" -w start >/dev/null
export PGPASSWORD=bench-pw
pgbench -i -s 10 -q "host=127.0.0.1 port=$PG_PORT user=postgres dbname=postgres" >/dev/null 2>&1

# PgBouncer 1.18, session mode, same pool size; its users file holds the SCRAM secret.
SECRET=$(psql -X -At "host=127.0.0.1 port=$PG_PORT user=postgres dbname=postgres" \
  -c "SELECT rolpassword FROM pg_authid WHERE rolname = 'postgres'")
printf '"postgres" "%s"\n' "$SECRET" >"$RUN/userlist.txt"
cat >"$RUN/pgbouncer.ini" <<INI
[databases]
postgres = host=127.0.0.1 port=$PG_PORT dbname=postgres
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $BOUNCER_PORT
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $RUN/userlist.txt
pool_mode = session
default_pool_size = $POOL_SIZE
max_client_conn = 10000
logfile = $RUN/pgbouncer.log
pidfile = $RUN/pgbouncer.pid
INI
[[ $(id -u) -eq 0 ]] && chown postgres "$RUN"/pgbouncer.ini "$RUN"/userlist.txt
as_pg pgbouncer "$RUN/pgbouncer.ini" >/dev/null 2>&1 &
PIDS+=($!)

printf '"postgres" "bench-pw"\n' >"$RUN/users.txt"
cat >"$RUN/pgshift.yaml" <<YAML
listen: { host: 127.0.0.1, port: $SHIFT_PORT }
admin: { enabled: false }
client_auth: { method: scram-sha-256, users_file: $RUN/users.txt }
log_level: warn
routes:
  - name: bench
    client_database: postgres
    source: { host: 127.0.0.1, port: $PG_PORT, user: postgres, password: bench-pw }
    pool: { mode: session, size: $POOL_SIZE }
YAML
"$PGSHIFT" --config "$RUN/pgshift.yaml" 2>"$RUN/pgshift.log" &
PIDS+=($!)
for port in $BOUNCER_PORT $SHIFT_PORT; do
  for _ in $(seq 1 100); do (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
done

declare -A TPS LAT
run() {  # target port protocol clients
  local out
  out=$(pgbench -n -S -M "$3" -c "$4" -j 2 -T "$DURATION" \
    "host=127.0.0.1 port=$2 user=postgres dbname=postgres" 2>&1) || { echo "$out" >&2; return 1; }
  local tps lat
  tps=$(sed -nE 's/^tps = ([0-9.]+) .*/\1/p' <<<"$out")
  lat=$(sed -nE 's/^latency average = ([0-9.]+) ms/\1/p' <<<"$out")
  TPS[$1,$3,$4]="${TPS[$1,$3,$4]:-} $tps"
  LAT[$1,$3,$4]="${LAT[$1,$3,$4]:-} $lat"
}
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "pgbench -S (select-only), scale 10, ${DURATION}s x $ROUNDS rounds, pool size $POOL_SIZE, $(nproc) cores"
for round in $(seq 1 "$ROUNDS"); do
  for proto in $PROTOCOLS; do
    for c in $CLIENTS; do
      run direct "$PG_PORT" "$proto" "$c"
      run pgbouncer "$BOUNCER_PORT" "$proto" "$c"
      run pgshift "$SHIFT_PORT" "$proto" "$c"
    done
  done
  echo "round $round done" >&2
done

printf '\n| protocol | clients | direct tps | pgbouncer tps | pgshift tps | pgshift/direct | pgshift/pgbouncer | latency ms (direct / pgbouncer / pgshift) |\n'
printf '|---|---:|---:|---:|---:|---:|---:|---|\n'
for proto in $PROTOCOLS; do
  for c in $CLIENTS; do
    d=$(median <<<"${TPS[direct,$proto,$c]}"); b=$(median <<<"${TPS[pgbouncer,$proto,$c]}")
    s=$(median <<<"${TPS[pgshift,$proto,$c]}")
    ld=$(median <<<"${LAT[direct,$proto,$c]}"); lb=$(median <<<"${LAT[pgbouncer,$proto,$c]}")
    ls=$(median <<<"${LAT[pgshift,$proto,$c]}")
    printf '| %s | %s | %.0f | %.0f | %.0f | %.2f | %.2f | %s / %s / %s |\n' "$proto" "$c" "$d" "$b" "$s" \
      "$(awk -v a="$s" -v b="$d" 'BEGIN{print a/b}')" "$(awk -v a="$s" -v b="$b" 'BEGIN{print a/b}')" \
      "$ld" "$lb" "$ls"
  done
done
