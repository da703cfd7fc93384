# shellcheck shell=bash
# Migration scenarios of scripts/bench.sh (issues 11 and 13), sourced by it after lib.sh:
#   bench.sh sync     TPC-B through pgshift with logical sync running vs disabled, interleaved;
#                     lag p50/p99 during the runs; `pgshift verify` rows/s at the end
#   bench.sh cutover  two sidecars (control: target) under TPC-B plus two ledger writers;
#                     cutover and rollback CYCLES times; hold, pause, errors, missing ids
# Never run in CI: they take minutes and measure the machine.
# Environment: MSCALE [5] pgbench scale, MCLIENTS [16], SYNC_DURATION [20] s per run,
# SYNC_ROUNDS [3], CYCLES [10] cutover+rollback pairs, HEARTBEAT_MS [100] lag marker period.
MSCALE=${MSCALE:-5}
MCLIENTS=${MCLIENTS:-16}
SYNC_DURATION=${SYNC_DURATION:-20}
SYNC_ROUNDS=${SYNC_ROUNDS:-3}
CYCLES=${CYCLES:-10}
HEARTBEAT_MS=${HEARTBEAT_MS:-100}
TOKEN=bench-admin-token

mig_cleanup() {
  local rc=$? i c
  set +e
  trap - INT TERM
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${PIDS[i]}"; done
  for c in src tgt; do
    [[ -f "$RUN/$c/postmaster.pid" ]] && as_pg "$PGBIN/pg_ctl" -D "$RUN/$c" -m immediate -w -t 20 stop >/dev/null 2>&1
  done
  [[ -n "${RUN:-}" && -d "$RUN" ]] && rm -rf "$RUN"
  exit "$rc"
}

start_cluster() {  # name port
  echo bench-pw >"$RUN/pwfile"; own_pg "$RUN/pwfile"
  as_pg "$PGBIN/initdb" -D "$RUN/$1" -U postgres --auth=scram-sha-256 --pwfile="$RUN/pwfile" >/dev/null
  cat >>"$RUN/$1/postgresql.conf" <<CONF
port = $2
listen_addresses = '127.0.0.1'
unix_socket_directories = '$RUN'
max_connections = 200
shared_buffers = 128MB
fsync = off
synchronous_commit = off
wal_level = logical
CONF
  as_pg "$PGBIN/pg_ctl" -D "$RUN/$1" -l "$RUN/$1.log" -w start >/dev/null
}
psql_on() { local port=$1; shift; psql -X -q -v ON_ERROR_STOP=1 "host=127.0.0.1 port=$port user=postgres dbname=bench" "$@"; }

# Source with pgbench data (pgbench_history gets a primary key: verify and replication of
# UPDATE/DELETE need one), a ledger table, an empty target database.
mig_setup() {
  export PGPASSWORD=bench-pw
  SRC=$(free_port); TGT=$(free_port)
  start_cluster src "$SRC"; start_cluster tgt "$TGT"
  psql -X -q "host=127.0.0.1 port=$SRC user=postgres dbname=postgres" -c "CREATE DATABASE bench"
  psql -X -q "host=127.0.0.1 port=$TGT user=postgres dbname=postgres" -c "CREATE DATABASE bench"
  pgbench -i -s "$MSCALE" -q "host=127.0.0.1 port=$SRC user=postgres dbname=bench" >/dev/null 2>&1 \
    || die "pgbench -i failed"
  psql_on "$SRC" -c "ALTER TABLE pgbench_history ADD COLUMN hid bigserial PRIMARY KEY" \
    -c "CREATE TABLE ledger (id bigint PRIMARY KEY, writer text NOT NULL)"
  echo '"app" "app-pw"' >"$RUN/users.txt"; echo "$TOKEN" >"$RUN/token"
  chmod 600 "$RUN/users.txt" "$RUN/token"
}

write_config() {  # name
  local port admin
  port=$(free_port); admin=$(free_port)
  PORT[$1]=$port; APORT[$1]=$admin
  cat >"$RUN/$1.yaml" <<YAML
threads: $THREADS
log_level: warn
listen: { host: 127.0.0.1, port: $port, backlog: 4096 }
admin: { host: 127.0.0.1, port: $admin, token_file: $RUN/token }
client_auth: { method: scram-sha-256, users_file: $RUN/users.txt }
state_file: $RUN/$1-state.json
control: target
routes:
  - name: bench
    client_database: bench
    source: { host: 127.0.0.1, port: $SRC, database: bench, user: postgres, password: bench-pw }
    target: { host: 127.0.0.1, port: $TGT, database: bench, user: postgres, password: bench-pw }
    pool: { mode: transaction, size: $POOL_SIZE }
    sync: { mode: logical, heartbeat_ms: $HEARTBEAT_MS }
YAML
  "$PGSHIFT" check-config "$RUN/$1.yaml" >/dev/null || die "check-config $1 failed"
}
start_sidecar() {  # name
  "$PGSHIFT" --config "$RUN/$1.yaml" >"$RUN/$1.log" 2>&1 &
  PIDS+=($!); PID[$1]=$!
  wait_port "${PORT[$1]}" "$!" "$RUN/$1.log"
}
metric() {  # name metric-regex: the first matching sample's value
  curl -s -m 2 -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:${APORT[$1]}/metrics" \
    | awk -v m="$2" '$0 !~ /^#/ && $1 ~ m && !done {print $2; done = 1}' || true
}
ctl_on() { local n=$1; shift; "$PGSHIFT" ctl --url "http://127.0.0.1:${APORT[$n]}" --token-file "$RUN/token" "$@"; }
app_dsn() { echo "host=127.0.0.1 port=${PORT[$1]} user=app dbname=bench"; }
pct() {  # file percentile(0..100): nearest-rank over one number per line
  sort -g "$1" | awk -v p="$2" '{a[NR]=$1} END {if (!NR) {print "n/a"; exit} i=int(NR*p/100+0.999); if (i<1) i=1; print a[i]}'
}
tpcb_fail() {  # pgbench output file: failed transactions + aborted clients
  awk '/number of failed transactions:/ {f+=$5} /aborted in command|client [0-9]+ aborted/ {a++} END {print f+a+0}' "$1"
}

# ---------------------------------------------------------------------------------------
sync_scenario() {
  declare -gA APORT=()
  mig_setup
  write_config s1
  say "sync start --copy-schema (scale $MSCALE)"
  "$PGSHIFT" sync start bench --config "$RUN/s1.yaml" --copy-schema >"$RUN/sync-start.out" 2>&1 \
    || { cat "$RUN/sync-start.out" >&2; die "sync start failed"; }
  start_sidecar s1
  export PGPASSWORD=app-pw
  lag_now() { metric s1 "^pgshift_sync_lag_seconds"; }
  caught_up() {  # until the lag is under 1 s (the backlog of a disabled run applied)
    local i l
    for i in $(seq 1 600); do
      l=$(lag_now); [[ -n $l && $l != +Inf ]] && awk -v l="$l" 'BEGIN {exit !(l < 1)}' && return 0
      sleep 0.2
    done
    say "lag did not fall under 1 s (now $l)"
  }
  : >"$RUN/sync.tsv"; : >"$RUN/lag.txt"
  pgbench -n -S -c "$MCLIENTS" -j 2 -T 3 "$(app_dsn s1)" >/dev/null 2>&1 || true  # warm-up
  caught_up
  for round in $(seq 1 "$SYNC_ROUNDS"); do
    local order="on off"; ((round % 2 == 0)) && order="off on"
    for mode in $order; do
      if [[ $mode == on ]]; then
        PGPASSWORD=bench-pw psql_on "$TGT" -c "ALTER SUBSCRIPTION pgshift_bench ENABLE"; caught_up
        ( set +e; while :; do l=$(lag_now); [[ -n $l ]] && echo "$l" >>"$RUN/lag.txt"; sleep 0.5; done ) &
        local sampler=$!
      else
        PGPASSWORD=bench-pw psql_on "$TGT" -c "ALTER SUBSCRIPTION pgshift_bench DISABLE"
      fi
      local out tps lat
      out=$(pgbench -n -M simple -c "$MCLIENTS" -j 2 -T "$SYNC_DURATION" "$(app_dsn s1)" 2>&1) || true
      [[ $mode == on ]] && { kill "$sampler"; wait "$sampler" 2>/dev/null || true; }
      tps=$(sed -nE 's/^tps = ([0-9.]+) .*/\1/p' <<<"$out"); lat=$(sed -nE 's/^latency average = ([0-9.]+) ms/\1/p' <<<"$out")
      [[ -z $tps ]] && { say "pgbench ($mode) failed:"; tail -5 <<<"$out" >&2; tps=nan lat=nan; }
      printf '%s\t%s\t%s\t%s\n' "$mode" "$round" "$tps" "$lat" >>"$RUN/sync.tsv"
      say "round $round sync $mode: $tps tps; load $(cut -d' ' -f1-3 /proc/loadavg)"
    done
  done
  PGPASSWORD=bench-pw psql_on "$TGT" -c "ALTER SUBSCRIPTION pgshift_bench ENABLE"; caught_up
  say "pgshift verify bench"
  local vout vrate t0 t1 rows
  t0=$(date +%s.%N)
  vout=$("$PGSHIFT" verify bench --config "$RUN/s1.yaml" 2>&1) || say "verify did not report equal"
  t1=$(date +%s.%N)
  vrate=$(grep -oE '\(([0-9]+) rows/s\)' <<<"$vout" | tail -1 | tr -dc 0-9)
  rows=$(PGPASSWORD=bench-pw psql_on "$SRC" -Atc "SELECT (SELECT count(*) FROM pgbench_accounts) + (SELECT count(*) FROM pgbench_history) + (SELECT count(*) FROM pgbench_tellers) + (SELECT count(*) FROM pgbench_branches)")
  med_of() { awk -F'\t' -v m="$1" -v c="$2" '$1==m && $c!="nan" {print $c}' "$RUN/sync.tsv" \
    | sort -g | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]; else print "nan"}'; }
  local ton toff lon loff
  ton=$(med_of on 3); toff=$(med_of off 3); lon=$(med_of on 4); loff=$(med_of off 4)
  echo
  echo "TPC-B-like (-M simple), scale $MSCALE, $MCLIENTS clients through pgshift (pool $POOL_SIZE)," \
    "${SYNC_DURATION}s x $SYNC_ROUNDS rounds (median), interleaved, $(nproc) cores," \
    "pgshift ${PGSHIFT_COMMIT:+commit $PGSHIFT_COMMIT, }$(date -u +%Y-%m-%dT%H:%MZ)"
  printf '\n| sync | tps | latency ms | tps ratio (on/off) | latency ratio (on/off) |\n|---|---:|---:|---:|---:|\n'
  printf '| off (subscription disabled) | %.0f | %s | | |\n' "$toff" "$loff"
  printf '| on (logical, heartbeat %s ms) | %.0f | %s | %s | %s |\n' "$HEARTBEAT_MS" "$ton" "$lon" \
    "$(awk -v a="$ton" -v b="$toff" 'BEGIN {printf "%.2f", a/b}')" "$(awk -v a="$lon" -v b="$loff" 'BEGIN {printf "%.2f", a/b}')"
  printf '\n| lag during the sync-on runs (pgshift_sync_lag_seconds, sampled every 0.5 s) | p50 | p99 | max | samples |\n|---|---:|---:|---:|---:|\n'
  printf '| seconds | %s | %s | %s | %s |\n' "$(pct "$RUN/lag.txt" 50)" "$(pct "$RUN/lag.txt" 99)" \
    "$(pct "$RUN/lag.txt" 100)" "$(wc -l <"$RUN/lag.txt")"
  printf '\n| pgshift verify (at rest, %s rows on the source) | wall time s | rows/s (verify) |\n|---|---:|---:|\n' "$rows"
  printf '| %s | %.1f | %s |\n' "$(tail -1 <<<"$vout" | grep -q 'recorded' && tail -2 <<<"$vout" | head -1 || tail -1 <<<"$vout")" \
    "$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b-a}')" "${vrate:-n/a}"
  echo
  echo "Per-run results (mode round tps latency):"; sed 's/^/  /' "$RUN/sync.tsv"
}
