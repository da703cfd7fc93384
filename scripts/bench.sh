#!/usr/bin/env bash
# Benchmark, in one run: pgbench against PostgreSQL 15 directly, through PgBouncer 1.18 and
# through pgshift, both poolers in transaction mode with the same pool size. Runs are
# interleaved and repeated (the order of the targets rotates every round), so machine noise
# hits all of them alike. Then it measures proxy RSS per idle client connection.
#
#   scripts/bench.sh [sync|cutover|mirror] [--no-build]
#
# `sync`, `cutover` and `mirror` run the migration scenarios instead (scripts/bench/migrate.sh:
# TPC-B with logical sync on vs off, lag, verify rows/s; two sidecars switching back and forth
# under load; TPC-B with mirrored writes off / async / sync). They take minutes and are never part of CI.
#
# Output (stdout): a throughput table (tps, average latency, pgshift/direct and
# pgshift/PgBouncer, medians over ROUNDS) and a memory table. Progress goes to stderr.
#
# Environment (defaults in brackets):
#   DURATION [10]          seconds per pgbench run
#   ROUNDS [3]             repetitions; the tables show the median
#   CLIENTS ["1 16 64"]    client counts for select-only (-S); empty skips it
#   PROTOCOLS ["simple extended prepared"]
#   TPCB_CLIENTS [16]      client counts for the TPC-B-like default script; empty skips it
#   TPCB_PROTOCOLS [simple]
#   IDLE_COUNTS ["5000 10000"]  idle client connections for the memory table; empty skips it
#   MEM_PROXIES ["pgbouncer pgshift"]  proxies measured in the memory table
#   POOL_SIZE [20]         server connections of PgBouncer and of pgshift
#   THREADS [0]            pgshift `threads` (0 = one per core)
#   PGBOUNCER_PREPARED [session]  PgBouncer 1.18 has no max_prepared_statements, so -M
#                          prepared cannot work in transaction mode: `session` runs those rows
#                          through a session-mode PgBouncer (pool size = the largest client
#                          count), `skip` leaves them out
#   THREADS_COMPARE [0]    1: instead of all the above, compare pgshift `threads: 1` with
#                          `threads: 2` (select-only, prepared, at TC_CLIENTS ["16 64"])
#   PERF [0]               1: afterwards, at PERF_CLIENTS [16] clients, count each proxy's CPU
#                          time (user / kernel too), context switches and system calls per
#                          transaction (perf stat; -S, PERF_PROTOCOLS ["extended prepared"]),
#                          then `perf record -g`
#                          pgshift during one -S -M prepared run and print the top symbols
#                          (PERF_OUT: also save the full report to this file)
#   RESULTS                save the raw per-run results (TSV) to this file
#   PGSHIFT_COMMIT         the commit PGSHIFT_BIN was built from, printed in the header
#   PGSHIFT_B_BIN [""]     a second pgshift binary (e.g. the commit before a change) run in the
#                          same rotation as pgshift, with the same config: an A/B table follows
#                          (PGSHIFT_B_COMMIT names it)
#   PGSHIFT_BIN [build-release/proxy/pgshift], PG_BINDIR [/usr/lib/postgresql/15/bin],
#   SCALE [10], JOBS (pgbench -j; default 1, 2 or 4 by client count)
# --no-build uses PGSHIFT_BIN as it is; otherwise install-deps.sh runs and build-release is built.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
CLIENTS=${CLIENTS-"1 16 64"}
PROTOCOLS=${PROTOCOLS:-"simple extended prepared"}
TPCB_CLIENTS=${TPCB_CLIENTS-16}
TPCB_PROTOCOLS=${TPCB_PROTOCOLS:-simple}
IDLE_COUNTS=${IDLE_COUNTS-"5000 10000"}
MEM_PROXIES=${MEM_PROXIES:-"pgbouncer pgshift"}
POOL_SIZE=${POOL_SIZE:-20}
THREADS=${THREADS:-0}
PGBOUNCER_PREPARED=${PGBOUNCER_PREPARED:-session}
THREADS_COMPARE=${THREADS_COMPARE:-0}
TC_CLIENTS=${TC_CLIENTS:-"16 64"}
PERF=${PERF:-0}
PERF_CLIENTS=${PERF_CLIENTS:-16}
PERF_PROTOCOLS=${PERF_PROTOCOLS:-"extended prepared"}
SCALE=${SCALE:-10}
[[ $PGBOUNCER_PREPARED == session || $PGBOUNCER_PREPARED == skip ]] \
  || { echo "PGBOUNCER_PREPARED must be session or skip" >&2; exit 2; }

SCENARIO=""
if [[ "${1:-}" == sync || "${1:-}" == cutover || "${1:-}" == mirror ]]; then SCENARIO=$1; shift; fi
if [[ "${1:-}" != "--no-build" ]]; then
  bash scripts/install-deps.sh >/dev/null
  cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release -DPGSHIFT_TESTS=OFF >/dev/null
  ninja -C build-release -j2 pgshift >/dev/null
fi
PGSHIFT=${PGSHIFT_BIN:-$ROOT/build-release/proxy/pgshift}
PGBIN=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
[[ -x $PGSHIFT ]] || { echo "no pgshift binary at $PGSHIFT" >&2; exit 2; }
# shellcheck source=SCRIPTDIR/bench/lib.sh
source "$ROOT/scripts/bench/lib.sh"
if [[ -n $SCENARIO ]]; then
  # shellcheck source=SCRIPTDIR/bench/migrate.sh
  source "$ROOT/scripts/bench/migrate.sh"
  RUN=$(mktemp -d /tmp/pgshift-bench.XXXXXX); own_pg "$RUN"; chmod 755 "$RUN"
  trap mig_cleanup EXIT; trap 'exit 130' INT; trap 'exit 143' TERM
  [[ $THREADS == 0 ]] && THREADS=$(nproc)
  "${SCENARIO}_scenario"
  exit 0
fi

# Idle-connection runs need one descriptor per client in the proxy and in the load tool.
HARD_NOFILE=$(ulimit -Hn)
[[ $HARD_NOFILE == unlimited || $HARD_NOFILE -gt 65536 ]] && HARD_NOFILE=65536
ulimit -n "$HARD_NOFILE"
for n in $IDLE_COUNTS; do
  (( n + 100 <= $(ulimit -n) )) || say "warning: ulimit -n is $(ulimit -n), too low for $n idle clients"
done

RUN=$(mktemp -d /tmp/pgshift-bench.XXXXXX)
own_pg "$RUN"; chmod 755 "$RUN"
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
export PGPASSWORD=bench-pw
SESSION_FALLBACK=0
MAXC=1  # pool size of the session-mode PgBouncer: one server per client
for c in $CLIENTS $TPCB_CLIENTS $( [[ $PERF == 1 ]] && echo "$PERF_CLIENTS"); do (( c > MAXC )) && MAXC=$c; done

PG_PORT=$(free_port)
say "PostgreSQL 15, scale $SCALE, in $RUN"
start_postgres "$SCALE"
PORT[direct]=$PG_PORT
NCPU=$(nproc)
THREADS_SHOWN=$THREADS; [[ $THREADS == 0 ]] && THREADS_SHOWN="0 (one per core: $NCPU)"
[[ $THREADS_COMPARE == 1 ]] && THREADS_SHOWN="1 and 2 (THREADS_COMPARE)"
if [[ $THREADS_COMPARE == 1 ]]; then
  start_pgshift pgshift_t1 transaction "$POOL_SIZE" 1 scram-sha-256
  start_pgshift pgshift_t2 transaction "$POOL_SIZE" 2 scram-sha-256
else
  start_pgbouncer pgbouncer transaction "$POOL_SIZE" scram-sha-256
  [[ $PGBOUNCER_PREPARED == session && " $PROTOCOLS $TPCB_PROTOCOLS $( [[ $PERF == 1 ]] && echo "$PERF_PROTOCOLS") " == *" prepared "* ]] \
    && start_pgbouncer pgbouncer_session session "$MAXC" scram-sha-256
  start_pgshift pgshift transaction "$POOL_SIZE" "$THREADS" scram-sha-256
  [[ -n ${PGSHIFT_B_BIN:-} ]] && BIN_OF[pgshift_b]=$PGSHIFT_B_BIN \
    && start_pgshift pgshift_b transaction "$POOL_SIZE" "$THREADS" scram-sha-256
fi
(( SESSION_FALLBACK )) && say "NOTE: this pgshift build runs pool.mode transaction as session mode" \
  "(see its warning); client counts above the pool size ($POOL_SIZE) will stall and fail"

: >"$RUN/results.tsv"  # target workload protocol clients round tps latency server-logins transactions
jobs_for() { if [[ -n ${JOBS:-} ]]; then echo $((JOBS < $1 ? JOBS : $1)); elif (($1 < 2)); then echo 1;
  elif (($1 <= 16)); then echo 2; else echo 4; fi; }
run() {  # target workload(select|tpcb) protocol clients round
  local out rc=0 tps lat n script=(-S) role before
  [[ $2 == tpcb ]] && script=()
  role=$(user_of "$1")
  check_alive "$1"
  before=$(logins "$role")
  out=$(timeout --foreground -k 5 $((DURATION + 60)) pgbench -n "${script[@]}" -M "$3" -c "$4" \
    -j "$(jobs_for "$4")" -T "$DURATION" "host=127.0.0.1 port=${PORT[$1]} user=$role dbname=postgres" 2>&1) || rc=$?
  # Ctrl-C: pgbench dies of SIGINT but timeout(1) exits 130, so bash does not run the trap itself.
  if ((rc == 130 || rc == 143)); then exit "$rc"; fi
  tps=$(sed -nE 's/^tps = ([0-9.]+) .*/\1/p' <<<"$out")
  lat=$(sed -nE 's/^latency average = ([0-9.]+) ms/\1/p' <<<"$out")
  n=$(sed -nE 's/^number of transactions actually processed: ([0-9]+).*/\1/p' <<<"$out")
  if ((rc != 0)) || [[ -z $tps ]]; then
    say "FAILED ($rc): $1 $2 -M $3 -c $4:"; tail -5 <<<"$out" >&2
    tps=nan lat=nan
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "$tps" "$lat" \
    $(( $(logins "$role") - before )) "${n:-0}" >>"$RUN/results.tsv"
}
bouncer_for() {  # protocol: which PgBouncer serves it ("" = none)
  if [[ $1 != prepared ]]; then echo pgbouncer
  elif [[ $PGBOUNCER_PREPARED == session ]]; then echo pgbouncer_session; fi
}
CELLS=()  # "workload protocol clients targets..."
if [[ $THREADS_COMPARE == 1 ]]; then
  for c in $TC_CLIENTS; do CELLS+=("select prepared $c direct pgshift_t1 pgshift_t2"); done
else
  for p in $PROTOCOLS; do for c in $CLIENTS; do
    CELLS+=("select $p $c direct $(bouncer_for "$p") pgshift ${PGSHIFT_B_BIN:+pgshift_b}"); done; done
  for p in $TPCB_PROTOCOLS; do for c in $TPCB_CLIENTS; do
    CELLS+=("tpcb $p $c direct $(bouncer_for "$p") pgshift ${PGSHIFT_B_BIN:+pgshift_b}"); done; done
fi

say "$NCPU cores, pgshift threads: $THREADS_SHOWN, pool size $POOL_SIZE, ${DURATION}s x $ROUNDS rounds, ${#CELLS[@]} cells"
# Warm-up, not measured: fills the server's caches and opens each pooler's server connections.
WARM=(); WARMC=1
for cell in "${CELLS[@]}"; do
  read -r _ _ c targets <<<"$cell"; (( c > WARMC )) && WARMC=$c
  for x in $targets; do [[ " ${WARM[*]} " == *" $x "* ]] || WARM+=("$x"); done
done
for x in "${WARM[@]}"; do  # repeat (at most 4 x 3 s) until the pooler stops opening connections
  role=$(user_of "$x")
  for _ in 1 2 3 4; do
    before=$(logins "$role"); rc=0
    timeout --foreground -k 5 60 pgbench -n -S -c "$WARMC" -j "$(jobs_for "$WARMC")" -T 3 \
      "host=127.0.0.1 port=${PORT[$x]} user=$role dbname=postgres" >/dev/null 2>&1 || rc=$?
    if ((rc == 130 || rc == 143)); then exit "$rc"; fi
    [[ $x == direct || $(logins "$role") -eq $before ]] && break
  done
done
for round in $( (( ${#CELLS[@]} > 0 )) && seq 1 "$ROUNDS"); do
  for cell in "${CELLS[@]}"; do
    read -r w p c targets <<<"$cell"
    read -ra t <<<"$targets"
    for i in "${!t[@]}"; do
      run "${t[$(( (i + round - 1) % ${#t[@]} ))]}" "$w" "$p" "$c" "$round"
    done
  done
  say "round $round of $ROUNDS done; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
done
[[ -n ${RESULTS:-} ]] && cp "$RUN/results.tsv" "$RESULTS"

# Medians of tps and latency per (target, workload, protocol, clients); "nan" marks failed runs.
med() {  # target workload protocol clients column(6=tps, 7=latency, 8=server logins)
  awk -F'\t' -v t="$1" -v w="$2" -v p="$3" -v c="$4" -v col="$5" \
    '$1==t && $2==w && $3==p && $4==c && $5 ~ /^[0-9]+$/ && $col!="nan" {print $col}' "$RUN/results.tsv" \
    | sort -g | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]; else print "nan"}'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (a=="nan" || b=="nan" || b==0) print "n/a"; else printf "%.2f", a/b}'; }
num() { awk -v a="$1" 'BEGIN {if (a=="nan") print "fail"; else printf "%.0f", a}'; }
lat() { local m; m=$(med "$@" 7); [[ $m == nan ]] && m=n/a; echo "$m"; }
logs() { local m; m=$(med "$@" 8); [[ $m == nan ]] && m=-; echo "$m"; }

print_throughput() {
  echo
  echo "pgbench, scale $SCALE, ${DURATION}s x $ROUNDS rounds (median), $NCPU cores, pool size $POOL_SIZE," \
    "pgshift threads: $THREADS_SHOWN," \
    "pgshift ${PGSHIFT_COMMIT:+commit $PGSHIFT_COMMIT, }$(date -u +%Y-%m-%dT%H:%MZ)"
  (( SESSION_FALLBACK )) && echo "NOTE: this pgshift build ran pool.mode transaction as session mode."
  if [[ $THREADS_COMPARE == 1 ]]; then
    printf '\n| workload | protocol | clients | direct tps | threads: 1 tps | threads: 2 tps | 2 threads / 1 thread | 1 thread / direct | 2 threads / direct | latency ms (direct / 1 / 2) | server logins per run (1 / 2) |\n'
    printf '|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|\n'
  else
    printf '\n| workload | protocol | clients | direct tps | pgbouncer tps | pgshift tps | pgshift/direct | pgshift/pgbouncer | latency ms (direct / pgbouncer / pgshift) | server logins per run (pgbouncer / pgshift) |\n'
    printf '|---|---|---:|---:|---:|---:|---:|---:|---|---|\n'
  fi
  for cell in "${CELLS[@]}"; do
    read -r w p c targets <<<"$cell"
    read -ra t <<<"$targets"
    [[ $w == select ]] && wl="select-only (-S)" || wl="TPC-B-like"
    if [[ $THREADS_COMPARE == 1 ]]; then
      d=$(med direct "$w" "$p" "$c" 6); a=$(med pgshift_t1 "$w" "$p" "$c" 6); b=$(med pgshift_t2 "$w" "$p" "$c" 6)
      printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s / %s / %s | %s / %s |\n' "$wl" "$p" "$c" \
        "$(num "$d")" "$(num "$a")" "$(num "$b")" "$(ratio "$b" "$a")" "$(ratio "$a" "$d")" "$(ratio "$b" "$d")" \
        "$(lat direct "$w" "$p" "$c")" "$(lat pgshift_t1 "$w" "$p" "$c")" "$(lat pgshift_t2 "$w" "$p" "$c")" \
        "$(logs pgshift_t1 "$w" "$p" "$c")" "$(logs pgshift_t2 "$w" "$p" "$c")"
      continue
    fi
    d=$(med direct "$w" "$p" "$c" 6); s=$(med pgshift "$w" "$p" "$c" 6)
    if [[ ${t[1]} == pgbouncer* ]]; then
      b=$(med "${t[1]}" "$w" "$p" "$c" 6); bl=$(lat "${t[1]}" "$w" "$p" "$c"); bn=$(num "$b")
      bc=$(logs "${t[1]}" "$w" "$p" "$c")
      [[ ${t[1]} == pgbouncer_session ]] && bn="$bn (session mode, pool $MAXC)"
    else
      b=nan bl=n/a bn="skipped" bc=-
    fi
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s / %s / %s | %s / %s |\n' "$wl" "$p" "$c" "$(num "$d")" \
      "$bn" "$(num "$s")" "$(ratio "$s" "$d")" "$(ratio "$s" "$b")" "$(lat direct "$w" "$p" "$c")" "$bl" \
      "$(lat pgshift "$w" "$p" "$c")" "$bc" "$(logs pgshift "$w" "$p" "$c")"
  done
  echo
  echo "Server logins per run: upstream connections the pooler opened during one pgbench run (median);" \
    "at most the pool size when the pool keeps its connections, more when it churns them."
  nfail=$(awk -F'\t' '$6=="nan"' "$RUN/results.tsv" | wc -l)
  ((nfail > 0)) && echo && echo "$nfail run(s) failed; medians are over the runs that succeeded (see stderr)."
  if [[ $THREADS_COMPARE != 1 && " $PROTOCOLS $TPCB_PROTOCOLS " == *" prepared "* ]]; then
    echo
    if [[ $PGBOUNCER_PREPARED == session ]]; then
      echo "-M prepared through PgBouncer: 1.18 has no max_prepared_statements, so those rows use a" \
        "session-mode PgBouncer with pool size $MAXC (one server per client); pgshift stays in transaction mode."
    else
      echo "-M prepared through PgBouncer skipped: 1.18 cannot keep prepared statements in transaction mode."
    fi
  fi
}
(( ${#CELLS[@]} > 0 )) && print_throughput

print_ab() {  # pgshift (A) against PGSHIFT_B_BIN (B), same rotation, same config
  echo
  echo "A/B in the same run: A = pgshift ${PGSHIFT_COMMIT:-$PGSHIFT}, B = ${PGSHIFT_B_COMMIT:-$PGSHIFT_B_BIN}"
  printf '\n| workload | protocol | clients | A tps | B tps | A/B | latency ms (A / B) | server logins per run (A / B) |\n|---|---|---:|---:|---:|---:|---|---|\n'
  for cell in "${CELLS[@]}"; do
    read -r w p c _ <<<"$cell"
    [[ $w == select ]] && wl="select-only (-S)" || wl="TPC-B-like"
    a=$(med pgshift "$w" "$p" "$c" 6); b=$(med pgshift_b "$w" "$p" "$c" 6)
    printf '| %s | %s | %s | %s | %s | %s | %s / %s | %s / %s |\n' "$wl" "$p" "$c" "$(num "$a")" "$(num "$b")" \
      "$(ratio "$a" "$b")" "$(lat pgshift "$w" "$p" "$c")" "$(lat pgshift_b "$w" "$p" "$c")" \
      "$(logs pgshift "$w" "$p" "$c")" "$(logs pgshift_b "$w" "$p" "$c")"
  done
}
[[ -n ${PGSHIFT_B_BIN:-} && $THREADS_COMPARE != 1 && ${#CELLS[@]} -gt 0 ]] && print_ab

# Memory: RSS per idle client. Fresh proxies (trust auth) per count; one login warms the pool.
if [[ $THREADS_COMPARE != 1 && -n $IDLE_COUNTS ]]; then
  MEM=()
  for n in $IDLE_COUNTS; do
    for proxy in $MEM_PROXIES; do
      name=mem_${proxy}_$n
      if [[ $proxy == pgbouncer ]]; then start_pgbouncer "$name" transaction "$POOL_SIZE" trust
      else start_pgshift "$name" transaction "$POOL_SIZE" "$THREADS" trust; fi
      psql -X -At "host=127.0.0.1 port=${PORT[$name]} user=$(user_of "$name") dbname=postgres" -c 'SELECT 1' >/dev/null \
        || say "warm-up query through $proxy failed"
      say "memory: $n idle clients through $proxy"
      rc=0
      line=$(python3 "$ROOT/scripts/bench/idle_clients.py" --port "${PORT[$name]}" --count "$n" --user "$(user_of "$name")" \
        --pid "${PID[$name]}" --timeout $((60 + n / 100))) || rc=$?
      if ((rc == 130 || rc == 143)); then exit "$rc"; fi
      ((rc == 0)) || say "memory: not every client of $proxy got ReadyForQuery"
      check_alive "$name"
      MEM+=("$proxy $line")
      stop_target "$name"
    done
  done
  printf '\n| proxy | idle clients | ready | RSS before (MiB) | RSS after (MiB) | KiB per idle client |\n|---|---:|---:|---:|---:|---:|\n'
  for m in "${MEM[@]}"; do
    read -r proxy kv <<<"$m"
    declare -A F=(); for pair in $kv; do F[${pair%%=*}]=${pair#*=}; done
    printf '| %s | %s | %s | %s | %s | %s |\n' "$proxy" "${F[clients]:-?}" "${F[ready]:-?}" \
      "$(awk -v k="${F[rss_before_kib]:-nan}" 'BEGIN {printf "%.1f", k/1024}')" \
      "$(awk -v k="${F[rss_after_kib]:-nan}" 'BEGIN {printf "%.1f", k/1024}')" "${F[kib_per_client]:-n/a}"
    unset F
  done
  echo
  echo "Each client completed startup and authentication (trust) and got ReadyForQuery, then sat idle;" \
    "KiB per client = (RSS after - RSS before) / ready clients, on a fresh proxy after one warm-up login."
fi

# Optional: where the proxies' time goes (scripts/bench/perf.sh).
if [[ $PERF == 1 ]]; then
  # shellcheck source=SCRIPTDIR/bench/perf.sh
  source "$ROOT/scripts/bench/perf.sh"
  if [[ $THREADS_COMPARE == 1 ]]; then
    perf_counts "$PERF_CLIENTS" pgshift_t1 pgshift_t2
    perf_profile pgshift_t2 "$PERF_CLIENTS"
  else
    perf_counts "$PERF_CLIENTS" pgbouncer pgshift
    perf_profile pgshift "$PERF_CLIENTS"
  fi
fi
