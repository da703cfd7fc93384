# shellcheck shell=bash
# shellcheck disable=SC2034  # PID is read by check_alive in lib.sh
# Migration scenarios of scripts/bench.sh (issues 11 and 13), sourced by it after lib.sh:
#   bench.sh sync     TPC-B through pgshift with logical sync running vs disabled, interleaved;
#                     lag p50/p99 during the runs; `pgshift verify` rows/s at the end
#   bench.sh mirror   TPC-B through three sidecars in turn, interleaved: sync.mode none, mirror
#                     with ack async, mirror with ack sync (each mirror into its own target
#                     database); tps and latency ratios against none, mirror lag after each run
#   bench.sh cutover  two sidecars (control: target) under TPC-B plus two ledger writers;
#                     cutover and rollback CYCLES times; hold, pause, errors, missing ids
# Never run in CI: they take minutes and measure the machine.
# TARGET_NICE [0]: the target cluster runs under `nice -n TARGET_NICE`, and so does its
# scheduler autogroup (pg_ctl gives the postmaster a session of its own). On one machine the
# target's work (applying the replayed or replicated writes) competes with the source for the
# same cores, which a separate target host (RDS) does not; 19 stands in for that host, so the
# tps cost left is pgshift's own (the replay then catches up after the run: see the drain).
# TARGET_SCHED [""] idle: the target cluster runs under SCHED_IDLE (chrt --idle; its
# processes inherit it): it runs only on CPU time nothing else wants, and any waking source,
# pgbench or pgshift thread preempts it at once. Closer to a target on its own host than nice
# 19, whose group still takes slices of a busy machine (see the CPU table of `mirror`).
# Environment: MSCALE [16] pgbench scale, MCLIENTS [16], SYNC_DURATION [20] s per run,
# SYNC_ROUNDS [3], CYCLES [10] cutover+rollback pairs, HEARTBEAT_MS [100] lag marker period,
# MIRROR_PERF [0] 1: in round 1 of `mirror`, `perf stat --per-thread` on each sidecar from the
# start of its pgbench run to the end of its drain: CPU us, system calls and context switches
# per transaction of the I/O threads and of the mirror thread (named pgshift-mirror); 2: also
# `perf record -g` of the async sidecar in round 1 (top symbols per thread kind),
# MPROTOCOL [simple] pgbench -M of the mirror runs, MIRROR_B_BIN [""] a second pgshift binary (e.g. main's) for an interleaved A/B: modes
# async_b and sync_b run it, MIRROR_MODES ["none async sync"] lists the modes to run,
# CUTOVER_RATE [""] total TPC-B tps limit in the cutover scenario (pgbench -R, split over the
# two sidecars; empty: as fast as it goes). A cutover needs lag < 500 ms and a clean verify:
# when the target cannot apply the full-speed load that fast, the switch is refused.
# CUTOVER_VERIFY [gate]: `pgshift verify` runs before each switch and gates it; `skip`: it
# still runs and is reported, but ctl gets --skip-verify (verify does not report EQUAL while
# writes go on: see docs/benchmarks.md). After the load stops, one verify at rest.
# pgbench's own advice: a scale below the client count mostly measures the update contention
# on pgbench_branches (one row per scale unit), which magnifies any delay inside a
# transaction far beyond its CPU cost.
MSCALE=${MSCALE:-16}
CUTOVER_RATE=${CUTOVER_RATE:-}
CUTOVER_VERIFY=${CUTOVER_VERIFY:-gate}
LEDGER_RATE=${LEDGER_RATE:-100}  # writes per second of each ledger writer (0: unthrottled)
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
  local nice=0 sched=(); [[ $1 == tgt ]] && nice=${TARGET_NICE:-0}
  [[ $1 == tgt && ${TARGET_SCHED:-} == idle ]] && sched=(chrt --idle 0)
  as_pg "${sched[@]}" nice -n "$nice" "$PGBIN/pg_ctl" -D "$RUN/$1" -l "$RUN/$1.log" -w start >/dev/null
  # pg_ctl starts the postmaster in a session of its own, and with autogroup scheduling
  # (kernel.sched_autogroup_enabled) a process's nice only ranks it inside its session's
  # group: the group itself competes at the group's nice. Set that too, or TARGET_NICE
  # changes nothing against the source and the sidecars.
  local group
  group=/proc/$(head -1 "$RUN/$1/postmaster.pid")/autogroup
  if ((nice != 0)) && [[ -w $group ]]; then
    echo "$nice" >"$group" || echo "warning: could not set $group to nice $nice" >&2
  fi
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
start_sidecar() {  # name [binary]
  "${2:-$PGSHIFT}" --config "$RUN/$1.yaml" >"$RUN/$1.log" 2>&1 &
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
  echo "TPC-B-like (-M ${MPROTOCOL:-simple}), scale $MSCALE, $MCLIENTS clients through pgshift (pool $POOL_SIZE)," \
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
  printf '| %s | %.1f | %s |\n' "$(grep -E '^(EQUAL|NOT EQUAL)' <<<"$vout" | tail -1)" \
    "$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b-a}')" "${vrate:-n/a}"
  echo
  echo "Per-run results (mode round tps latency):"; sed 's/^/  /' "$RUN/sync.tsv"
}

# ---------------------------------------------------------------------------------------
# The ledger writer: unique ids, one autocommit INSERT each; every acknowledged id logged
# with its wall-clock start and latency; errors logged and the connection reopened.
write_ledger_py() {
  cat >"$RUN/ledger.py" <<'PY'
import sys, os, time, psycopg2
dsn, first, acks_path, errs_path, stop_path = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
period = 1.0 / float(sys.argv[6]) if float(sys.argv[6]) > 0 else 0.0
conn, i, due = None, first, time.monotonic()
with open(acks_path, "w") as acks, open(errs_path, "w") as errs:
    while not os.path.exists(stop_path):
        if period:  # paced: a slow write is not made up by a burst
            due = max(due + period, time.monotonic()); time.sleep(max(0.0, due - time.monotonic()))
        start, t = time.time(), time.monotonic()
        try:
            if conn is None:
                conn = psycopg2.connect(dsn)
                conn.autocommit = True
            conn.cursor().execute("INSERT INTO ledger (id, writer) VALUES (%s, 'bench')", (i,))
            acks.write(f"{i} {start:.6f} {time.monotonic() - t:.6f}\n"); acks.flush()
        except psycopg2.Error as e:
            errs.write(f"{start:.6f} {i} {e.pgcode} {str(e).strip().splitlines()[0] if str(e).strip() else ''}\n"); errs.flush()
            conn = None
        i += 1
PY
}

cutover_scenario() {
  declare -gA APORT=()
  mig_setup
  write_config a; write_config b
  say "sync start --copy-schema (scale $MSCALE)"
  "$PGSHIFT" sync start bench --config "$RUN/a.yaml" --copy-schema >"$RUN/sync-start.out" 2>&1 \
    || { cat "$RUN/sync-start.out" >&2; die "sync start failed"; }
  start_sidecar a; start_sidecar b
  local i
  for i in $(seq 1 100); do
    (( $(ctl_on a members 2>/dev/null | grep -c ' yes ') >= 2 )) && break; sleep 0.2
  done
  ctl_on a members >&2
  export PGPASSWORD=app-pw
  write_ledger_py
  local stop=$RUN/stop half=$((MCLIENTS / 2)) n rate=()
  [[ -n $CUTOVER_RATE ]] && rate=(-R $((CUTOVER_RATE / 2)))
  for n in a b; do
    ( set +e; k=0; while [[ ! -f $stop ]]; do
        pgbench -n -M simple -c "$half" -j 1 "${rate[@]}" -T 15 "$(app_dsn $n)" >"$RUN/pgbench-$n-$k.out" 2>&1; k=$((k + 1))
      done ) &
    PIDS+=($!)
  done
  /usr/bin/python3 "$RUN/ledger.py" "$(app_dsn a)" 1 "$RUN/acks-a" "$RUN/errs-a" "$stop" "$LEDGER_RATE" & PIDS+=($!)
  /usr/bin/python3 "$RUN/ledger.py" "$(app_dsn b)" 1000000000 "$RUN/acks-b" "$RUN/errs-b" "$stop" "$LEDGER_RATE" & PIDS+=($!)
  sleep 5  # the load runs before the first switch
  local state=source done_c=0 done_r=0 attempts=0 op t0 t1 rc v0 v1 vrc skip=()
  [[ $CUTOVER_VERIFY == skip ]] && skip=(--skip-verify)
  : >"$RUN/switches.tsv"
  while ((done_c < CYCLES || done_r < CYCLES)) && ((attempts < 4 * CYCLES)); do
    attempts=$((attempts + 1))
    op=cutover; [[ $state == target ]] && op=rollback
    v0=$(date +%s.%N); vrc=0
    "$PGSHIFT" verify bench --config "$RUN/a.yaml" >"$RUN/verify-$attempts.out" 2>&1 || vrc=$?
    v1=$(date +%s.%N); t0=$v1; rc=0
    ctl_on a "$op" bench "${skip[@]}" >"$RUN/op-$attempts.out" 2>&1 || rc=$?
    t1=$(date +%s.%N)
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$op" "$t0" "$t1" "$rc" "$v0" "$v1" "$vrc" >>"$RUN/switches.tsv"
    if ((rc == 0)); then
      if [[ $op == cutover ]]; then state=target; done_c=$((done_c + 1)); else state=source; done_r=$((done_r + 1)); fi
      say "$op $((done_c + done_r)) of $((2 * CYCLES)): $(tail -1 "$RUN/op-$attempts.out"); load $(cut -d' ' -f1-3 /proc/loadavg)"
      # A pause over the issue's 250 ms goal: show where it went (the step lines).
      (( $(sed -nE 's/.*total pause ([0-9]+) ms.*/\1/p' "$RUN/op-$attempts.out" | tail -1) > 250 )) \
        && sed 's/^/    /' "$RUN/op-$attempts.out" >&2
    else
      say "$op failed (exit $rc, verify exit $vrc):"; tail -15 "$RUN/op-$attempts.out" >&2; tail -3 "$RUN/verify-$attempts.out" >&2
    fi
    sleep 2
  done
  sleep 3; touch "$stop"
  for i in $(seq 1 400); do  # the writers and pgbench loops stop within one pgbench run
    pgrep -f "$RUN/ledger.py" >/dev/null || pgrep -f "port=${PORT[a]} user=app" >/dev/null \
      || pgrep -f "port=${PORT[b]} user=app" >/dev/null || break
    sleep 0.1
  done
  local cnt_s cnt_t
  for i in $(seq 1 300); do
    cnt_s=$(PGPASSWORD=bench-pw psql_on "$SRC" -Atc "SELECT count(*) FROM ledger")
    cnt_t=$(PGPASSWORD=bench-pw psql_on "$TGT" -Atc "SELECT count(*) FROM ledger")
    [[ $cnt_s == "$cnt_t" ]] && break; sleep 0.1
  done
  cat "$RUN/acks-a" "$RUN/acks-b" | awk '{print $1}' >"$RUN/acked-ids"
  missing_on() {
    PGPASSWORD=bench-pw psql_on "$1" -At -c "CREATE TEMP TABLE acked (id bigint)" -c "COPY acked FROM STDIN" \
      -c "SELECT count(*) FROM acked a LEFT JOIN ledger l USING (id) WHERE l.id IS NULL" <"$RUN/acked-ids" | tail -n 1
  }
  local miss_s miss_t
  miss_s=$(missing_on "$SRC"); miss_t=$(missing_on "$TGT")
  "$PGSHIFT" verify bench --config "$RUN/a.yaml" >"$RUN/verify-rest.out" 2>&1 || true
  FINAL_VERIFY=$(grep -E '^(EQUAL|NOT EQUAL)' "$RUN/verify-rest.out" | tail -1)
  for n in a b; do
    curl -s -m 5 -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:${APORT[$n]}/metrics" >"$RUN/metrics-$n"
  done
  cat "$RUN"/pgbench-*.out >"$RUN/pgbench-all"
  LEDGER_RATE=$LEDGER_RATE CUTOVER_RATE=$CUTOVER_RATE CUTOVER_VERIFY=$CUTOVER_VERIFY FINAL_VERIFY=$FINAL_VERIFY python3 - "$RUN" "$CYCLES" "$MCLIENTS" "$MSCALE" "$state" "$miss_s" "$miss_t" "$cnt_s" "$cnt_t" "$(tpcb_fail "$RUN/pgbench-all")" \
    "${PGSHIFT_COMMIT:-}" <<'PY'
import sys, re, glob, os, time
run, cycles, clients, scale, state, miss_s, miss_t, cnt_s, cnt_t, pgb_fail, commit = sys.argv[1:12]
def pct(v, p):
    if not v: return float("nan")
    v = sorted(v); i = max(1, int(len(v) * p / 100 + 0.999)); return v[min(i, len(v)) - 1]
sw = [l.split("\t") for l in open(f"{run}/switches.tsv").read().splitlines()]
ok = [(s[0], float(s[1]), float(s[2])) for s in sw if s[3] == "0"]
acks = []
for n in "ab":
    for l in open(f"{run}/acks-{n}"):
        i, s, lat = l.split(); acks.append((float(s), float(lat)))
errs = []
for n in "ab":
    errs += [l.rstrip("\n") for l in open(f"{run}/errs-{n}")]
inwin, outwin, per_switch = [], [], []
for s, lat in acks:
    hit = any(s <= t1 and s + lat >= t0 for _, t0, t1 in ok)
    (inwin if hit else outwin).append(lat * 1000)
for op, t0, t1 in ok:
    ws = [lat * 1000 for s, lat in acks if s <= t1 and s + lat >= t0]
    per_switch.append(max(ws) if ws else 0.0)
summ = {}
for f in sorted(glob.glob(f"{run}/op-*.out")):
    txt = open(f).read()
    m = re.search(r"completed in (\d+) ms \(total pause (\d+) ms, held transactions (\d+), longest hold <= (\d+) ms\)", txt)
    if m: summ[f] = tuple(int(x) for x in m.groups())
tot = [v[1] for v in summ.values()]; dur = [v[0] for v in summ.values()]
held = [v[2] for v in summ.values()]; longest = [v[3] for v in summ.values()]
# pgshift_cutover_pause_seconds: buckets summed over both sidecars and kinds
buckets, count, total = {}, 0, 0.0
for n in "ab":
    for l in open(f"{run}/metrics-{n}"):
        m = re.match(r'pgshift_cutover_pause_seconds_bucket\{.*le="([^"]+)".*\} (\S+)', l)
        if m: buckets[m.group(1)] = buckets.get(m.group(1), 0) + float(m.group(2))
        m = re.match(r'pgshift_cutover_pause_seconds_count\{.*\} (\S+)', l)
        if m: count += float(m.group(1))
        m = re.match(r'pgshift_cutover_pause_seconds_sum\{.*\} (\S+)', l)
        if m: total += float(m.group(1))
def hq(q):
    if not count: return "n/a"
    for le, c in sorted(((float(k), v) for k, v in buckets.items())):
        if c >= q * count: return "<= %g ms" % (le * 1000) if le != float("inf") else "> last bucket"
    return "n/a"
verify = []
for s in sw:
    verify.append((float(s[5]) - float(s[4])) * 1000)
f = lambda x: "n/a" if x != x else "%.0f" % x
vf = lambda x: "n/a" if x != x else "%.1f" % x
nc = sum(1 for o in ok if o[0] == "cutover"); nr = len(ok) - nc
print()
rate = os.environ.get("CUTOVER_RATE") or ""
print(f"Two sidecars (control: target), TPC-B-like -M simple scale {scale}, {clients} clients split over both"
      f"{', rate-limited to ' + rate + ' tps in total (pgbench -R)' if rate else ''},"
      f" plus one ledger writer per sidecar ({os.environ.get('LEDGER_RATE')} writes/s each, 0 = unthrottled); {nc} cutovers + {nr} rollbacks completed of {len(sw)} attempts"
      f" (asked: {cycles} each); {os.cpu_count()} cores, pgshift {'commit ' + commit + ', ' if commit else ''}"
      f"{time.strftime('%Y-%m-%dT%H:%MZ', time.gmtime())}")
print("\n| client-visible hold (ledger write latency, ms) | writes | p50 | p99 | max |\n|---|---:|---:|---:|---:|")
print(f"| writes overlapping a switch (ctl start to end) | {len(inwin)} | {vf(pct(inwin, 50))} | {vf(pct(inwin, 99))} | {vf(pct(inwin, 100))} |")
print(f"| the slowest write of each switch | {len(per_switch)} | {vf(pct(per_switch, 50))} | {vf(pct(per_switch, 99))} | {vf(pct(per_switch, 100))} |")
print(f"| all other writes (baseline) | {len(outwin)} | {vf(pct(outwin, 50))} | {vf(pct(outwin, 99))} | {vf(pct(outwin, 100))} |")
print("\n| per switch (ctl summary line), ms | p50 | p99 | max |\n|---|---:|---:|---:|")
print(f"| total pause | {f(pct(tot, 50))} | {f(pct(tot, 99))} | {f(pct(tot, 100))} |")
print(f"| longest hold | {f(pct(longest, 50))} | {f(pct(longest, 99))} | {f(pct(longest, 100))} |")
print(f"| whole operation (completed in) | {f(pct(dur, 50))} | {f(pct(dur, 99))} | {f(pct(dur, 100))} |")
print(f"| held transactions (count, not ms) | {f(pct(held, 50))} | {f(pct(held, 99))} | {f(pct(held, 100))} |")
print(f"| pgshift verify before it | {f(pct(verify, 50))} | {f(pct(verify, 99))} | {f(pct(verify, 100))} |")
mean = "n/a" if not count else "%.0f ms" % (total / count * 1000)
print(f"\npgshift_cutover_pause_seconds (both sidecars): {int(count)} observations, mean {mean}, p50 {hq(0.5)}, p99 {hq(0.99)}, max {hq(1.0)}")
print(f"\n| client errors: pgbench failed transactions + aborted clients | ledger errors | acknowledged ids | missing on source | missing on target | ledger rows source / target | ends on |\n|---:|---:|---:|---:|---:|---|---|")
print(f"| {pgb_fail} | {len(errs)} | {len(acks)} | {miss_s} | {miss_t} | {cnt_s} / {cnt_t} | {state} |")
veq = sum(1 for s in sw if s[6] == "0")
print(f"\npgshift verify before the switches (under load): {veq} of {len(sw)} EQUAL; ctl {'--skip-verify' if os.environ.get('CUTOVER_VERIFY') == 'skip' else 'gated on it'}."
      f" After the load stopped: {os.environ.get('FINAL_VERIFY') or 'n/a'}")
if errs:
    print("\nLedger errors (first 5):"); [print("  " + e) for e in errs[:5]]
PY
  grep -h -E 'aborted in command|connection to .* failed' "$RUN/pgbench-all" | sed -E 's/client [0-9]+/client N/' | sort | uniq -c | head -5 | sed 's/^/  pgbench: /' || true
}

# ---------------------------------------------------------------------------------------
# Mirror: the same TPC-B through pgshift with sync.mode none, mirror (ack async) and mirror
# (ack sync). Each mirror sidecar mirrors into a target database of its own (bench_async,
# bench_sync), started with `pgshift sync start` (fleet hold, snapshot, COPY).
write_mirror_config() {  # name mode(none|async|sync)
  local port admin db=bench sync="{ mode: none }"
  port=$(free_port); admin=$(free_port)
  PORT[$1]=$port; APORT[$1]=$admin
  [[ $2 != none ]] && { db=bench_$2; sync="{ mode: mirror, mirror: { ack: ${2%_b} } }"; }
  cat >"$RUN/$1.yaml" <<YAML
threads: $THREADS
log_level: warn
listen: { host: 127.0.0.1, port: $port, backlog: 4096 }
admin: { host: 127.0.0.1, port: $admin, token_file: $RUN/token }
client_auth: { method: scram-sha-256, users_file: $RUN/users.txt }
state_file: $RUN/$1-state.json
routes:
  - name: bench
    client_database: bench
    source: { host: 127.0.0.1, port: $SRC, database: bench, user: postgres, password: bench-pw }
    target: { host: 127.0.0.1, port: $TGT, database: $db, user: postgres, password: bench-pw }
    pool: { mode: transaction, size: $POOL_SIZE }
    sync: $sync
YAML
  "$PGSHIFT" check-config "$RUN/$1.yaml" >/dev/null || die "check-config $1 failed"
}

# MIRROR_PERF: one line per thread group (I/O threads, the mirror thread) of a perf stat
# --per-thread file, per transaction of the pgbench run that it counted.
txns_of() {  # pgbench-output: the transactions it processed
  sed -nE 's/^number of transactions actually processed: ([0-9]+).*/\1/p' <<<"$1"
}
mirror_perf_rows() {  # mode pgbench-output
  local txns
  txns=$(txns_of "$2")
  awk -F, -v mode="$1" -v n="${txns:-0}" '
    !/^#/ && NF > 3 { g = ($1 ~ /^pgshift-mirror/) ? "mirror" : "io"; v[g, $4] += $2; seen[g] = 1 }
    END { for (g in seen) if (n > 0) printf "perf %s %s: %.1f us CPU, %.2f syscalls, %.2f context switches per transaction (%d transactions)\n",
      mode, g, v[g, "task-clock"] * 1000 / n, v[g, "raw_syscalls:sys_enter"] / n, v[g, "context-switches"] / n, n }' \
    "$RUN/perf-$1" | tee -a "$RUN/mirror-perf.txt" >&2
}

# CPU accounting of each mirror run: clock ticks used so far by a process (all its threads,
# and the children it reaped), by a cluster (the postmaster and its live children: backends,
# walsenders, background workers) and by the whole box (busy: all but idle and iowait).
proc_ticks() {  # pid
  local stat f
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo 0; return; }
  read -r -a f <<<"${stat##*) }"  # after "pid (comm) ": f[11..14] utime stime cutime cstime
  echo $((f[11] + f[12] + f[13] + f[14]))
}
cluster_ticks() {  # src|tgt
  local pm kid sum
  pm=$(head -1 "$RUN/$1/postmaster.pid")
  sum=$(proc_ticks "$pm")
  for kid in $(pgrep -P "$pm"); do sum=$((sum + $(proc_ticks "$kid"))); done
  echo "$sum"
}
cpu_sample() {  # sidecar: "source target sidecar box-busy box-all" ticks
  echo "$(cluster_ticks src) $(cluster_ticks tgt) $(proc_ticks "${PID[$1]}")" \
    "$(awk '/^cpu / {b = $2 + $3 + $4 + $7 + $8 + $9; print b, b + $5 + $6}' /proc/stat)"
}
# Per transaction of the run, in us: source, target, sidecar, the rest of the box (pgbench and
# anything else), the whole box; then the box's idle share in %. Box ticks count every core.
cpu_columns() {  # before after transactions
  awk -v a="$1" -v b="$2" -v n="$3" -v hz="$(getconf CLK_TCK)" 'BEGIN {
    split(a, x, " "); split(b, y, " "); for (i = 1; i <= 5; i++) d[i] = y[i] - x[i]
    if (n <= 0 || d[5] <= 0) { print "nan\tnan\tnan\tnan\tnan\tnan"; exit }
    u = 1e6 / hz / n
    printf "%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.1f", d[1] * u, d[2] * u, d[3] * u, (d[4] - d[1] - d[2] - d[3]) * u, d[4] * u, 100 * (d[5] - d[4]) / d[5] }'
}

mirror_scenario() {
  declare -gA APORT=()
  mig_setup
  PGPASSWORD=bench-pw pg_dump -s "host=127.0.0.1 port=$SRC user=postgres dbname=bench" >"$RUN/schema.sql"
  local modes m
  read -r -a modes <<<"${MIRROR_MODES:-none async sync}"
  local mirrored=("${modes[@]/none/}")
  for m in ${mirrored[*]}; do
    PGPASSWORD=bench-pw psql -X -q "host=127.0.0.1 port=$TGT user=postgres dbname=postgres" -c "CREATE DATABASE bench_$m"
    PGPASSWORD=bench-pw psql -X -q -v ON_ERROR_STOP=1 "host=127.0.0.1 port=$TGT user=postgres dbname=bench_$m" -f "$RUN/schema.sql" >/dev/null
  done
  for m in "${modes[@]}"; do
    write_mirror_config "m_$m" "$m"
    if [[ $m == *_b ]]; then start_sidecar "m_$m" "${MIRROR_B_BIN:?MIRROR_B_BIN: the binary of modes async_b, sync_b}"; else start_sidecar "m_$m"; fi
  done
  for m in ${mirrored[*]}; do
    say "pgshift sync start (mirror, ack $m, scale $MSCALE)"
    "$PGSHIFT" sync start bench --config "$RUN/m_$m.yaml" >"$RUN/start-$m.out" 2>&1 \
      || { cat "$RUN/start-$m.out" >&2; die "mirror start ($m) failed"; }
  done
  export PGPASSWORD=app-pw
  drained() {  # until the sidecar's mirror queue is empty
    local i q
    for i in $(seq 1 1200); do
      q=$(metric "$1" "^pgshift_mirror_queue_bytes"); [[ ${q:-0} == 0 ]] && return 0
      sleep 0.1
    done
    say "the mirror of $1 did not drain (queue $q bytes)"
  }
  : >"$RUN/mirror.tsv"; : >"$RUN/mirror-cpu.tsv"
  for m in "${modes[@]}"; do pgbench -n -S -c "$MCLIENTS" -j 2 -T 2 "$(app_dsn "m_$m")" >/dev/null 2>&1 || true; done
  local n=${#modes[@]}
  for round in $(seq 1 "$SYNC_ROUNDS"); do
    local k
    for ((k = 0; k < n; k++)); do
      local mode=${modes[$(((k + round) % n))]} out tps lat t0 t1
      local perfpid=""
      if [[ ${MIRROR_PERF:-0} != 0 && $round == 1 ]]; then
        perf stat --per-thread -x, -e task-clock,context-switches,raw_syscalls:sys_enter \
          -p "${PID[m_$mode]}" -o "$RUN/perf-$mode" >/dev/null 2>&1 &
        perfpid=$!
        if [[ $MIRROR_PERF == 2 && $mode == async ]]; then
          perf record -g -o "$RUN/perf.data" -p "${PID[m_$mode]}" >"$RUN/perf-record.log" 2>&1 &
          perfpid="$perfpid $!"
        fi
        sleep 0.3
      fi
      local cpu0 cpu1 txns
      cpu0=$(cpu_sample "m_$mode")
      out=$(pgbench -n -M "${MPROTOCOL:-simple}" -c "$MCLIENTS" -j 2 -T "$SYNC_DURATION" "$(app_dsn "m_$mode")" 2>&1) || true
      cpu1=$(cpu_sample "m_$mode")
      t0=$(date +%s.%N)
      [[ $mode != none ]] && drained "m_$mode"
      t1=$(date +%s.%N)
      if [[ -n $perfpid ]]; then
        local p; for p in $perfpid; do kill -INT "$p" 2>/dev/null; wait "$p" || true; done
        mirror_perf_rows "$mode" "$out"
        if [[ -f $RUN/perf.data && $mode == async ]]; then
          perf report -i "$RUN/perf.data" --no-children --sort comm,dso,symbol -g none --stdio 2>/dev/null \
            | grep -vE '^(#.*)?$' >"$RUN/perf-report.txt" || true
          cp "$RUN/perf-report.txt" "${MIRROR_PERF_OUT:-/dev/null}" 2>/dev/null || true
        fi
      fi
      tps=$(sed -nE 's/^tps = ([0-9.]+) .*/\1/p' <<<"$out"); lat=$(sed -nE 's/^latency average = ([0-9.]+) ms/\1/p' <<<"$out")
      [[ -z $tps ]] && { say "pgbench ($mode) failed:"; tail -5 <<<"$out" >&2; tps=nan lat=nan; }
      local drain; drain=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.2f", b-a}')
      # Replay rate: what the mirror applied per second from the start of the run to the
      # end of its drain (a replay that falls behind takes less CPU from the clients).
      printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$mode" "$round" "$tps" "$lat" "$drain" \
        "$(awk -v t="$tps" -v d="$SYNC_DURATION" -v w="$drain" 'BEGIN {if (t == "nan") print "nan"; else printf "%.0f", t * d / (d + w)}')" >>"$RUN/mirror.tsv"
      txns=$(txns_of "$out")
      printf '%s\t%s\t%s\n' "$mode" "$round" "$(cpu_columns "$cpu0" "$cpu1" "${txns:-0}")" >>"$RUN/mirror-cpu.tsv"
      say "round $round mirror $mode: $tps tps, drained $(tail -1 "$RUN/mirror.tsv" | cut -f5) s after the run; load $(cut -d' ' -f1-3 /proc/loadavg)"
    done
  done
  med_of() { awk -F'\t' -v m="$1" -v c="$2" '$1==m && $c!="nan" {print $c}' "${3:-$RUN/mirror.tsv}" \
    | sort -g | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]; else print "nan"}'; }
  local div_a div_s
  [[ -n ${APORT[m_async]:-} ]] && div_a=$(metric m_async "^pgshift_mirror_divergences_total")
  [[ -n ${APORT[m_sync]:-} ]] && div_s=$(metric m_sync "^pgshift_mirror_divergences_total")
  echo
  echo "TPC-B-like (-M ${MPROTOCOL:-simple}), scale $MSCALE, $MCLIENTS clients through pgshift (pool $POOL_SIZE)," \
    "${SYNC_DURATION}s x $SYNC_ROUNDS rounds (median), interleaved, $(nproc) cores," \
    "target cluster at nice ${TARGET_NICE:-0}${TARGET_SCHED:+, SCHED_${TARGET_SCHED^^}}," \
    "pgshift ${PGSHIFT_COMMIT:+commit $PGSHIFT_COMMIT, }$(date -u +%Y-%m-%dT%H:%MZ)"
  printf '\n| mirror | tps | latency ms | tps ratio (vs none) | latency ratio (vs none) | drain after the run s | replay rate tps (run + drain) |\n|---|---:|---:|---:|---:|---:|---:|\n'
  local mode t l
  for mode in "${modes[@]}"; do
    t=$(med_of "$mode" 3); l=$(med_of "$mode" 4)
    printf '| %s | %.0f | %s | %s | %s | %s | %s |\n' "$mode" "$t" "$l" \
      "$(awk -v a="$t" -v b="$(med_of none 3)" 'BEGIN {printf "%.2f", a/b}')" \
      "$(awk -v a="$l" -v b="$(med_of none 4)" 'BEGIN {printf "%.2f", a/b}')" "$(med_of "$mode" 5)" \
      "$([[ $mode == none ]] && echo - || med_of "$mode" 6)"
  done
  echo
  echo "CPU during the pgbench runs (medians), in us per transaction: the rest is pgbench and anything else on the box; idle: share of all cores."
  printf '\n| mirror | source cluster | target cluster | pgshift | rest | box busy us/txn | idle %% |\n|---|---:|---:|---:|---:|---:|---:|\n'
  local c=$RUN/mirror-cpu.tsv
  for mode in "${modes[@]}"; do
    printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$mode" "$(med_of "$mode" 3 "$c")" "$(med_of "$mode" 4 "$c")" \
      "$(med_of "$mode" 5 "$c")" "$(med_of "$mode" 6 "$c")" "$(med_of "$mode" 7 "$c")" "$(med_of "$mode" 8 "$c")"
  done
  echo
  echo "Divergences reported: async ${div_a:-0}, sync ${div_s:-0} (first series of pgshift_mirror_divergences_total)."
  echo "Per-run results (mode round tps latency drain_s replay_rate):"; sed 's/^/  /' "$RUN/mirror.tsv"
  echo "Per-run CPU, us per transaction (mode round source target pgshift rest box idle%):"; sed 's/^/  /' "$RUN/mirror-cpu.tsv"
  if [[ -s $RUN/mirror-perf.txt ]]; then
    echo "perf stat --per-thread, round 1 (pgbench run + drain):"; sed 's/^/  /' "$RUN/mirror-perf.txt"
  fi
}
