# shellcheck shell=bash
# PERF=1 part of scripts/bench.sh: where a proxy's time goes. Sourced by bench.sh, which
# provides run(), RUN, PID, PIDS, RESULTS-style rows in $RUN/results.tsv and say().

# Per transaction: the proxy's CPU time, context switches and system calls, counted by
# `perf stat -p` during one pgbench -S run. Prints one markdown table row.
PERF_EVENTS=task-clock,context-switches,raw_syscalls:sys_enter
for s in epoll_wait epoll_pwait epoll_ctl recvfrom recvmsg read readv sendto sendmsg write writev futex; do
  PERF_EVENTS+=,syscalls:sys_enter_$s
done
# User and kernel CPU ticks of a process, all its threads (/proc/PID/stat fields 14 and 15).
cpu_ticks() { awk '{sub(/.*\) /, ""); print $12, $13}' "/proc/$1/stat"; }

perf_counts_row() {  # target protocol clients
  local out=$RUN/stat.$1.$2 pid txns
  DURATION=3 run "$1" select "$2" "$3" warm  # not counted: opens the pooler's connections
  perf stat -x, -e "$PERF_EVENTS" -p "${PID[$1]}" -o "$out" >/dev/null 2>&1 &
  pid=$!; PIDS+=("$pid")
  sleep 0.5
  local before after
  before=$(cpu_ticks "${PID[$1]}")
  run "$1" select "$2" "$3" "stat-$1"
  after=$(cpu_ticks "${PID[$1]}")
  kill -INT "$pid" 2>/dev/null; wait "$pid" || true
  txns=$(awk -F'\t' -v r="stat-$1" -v p="$2" '$5==r && $3==p {print $9}' "$RUN/results.tsv" | tail -1)
  awk -F, -v t="$1" -v p="$2" -v n="${txns:-0}" -v b="$before" -v a="$after" -v hz="$(getconf CLK_TCK)" '
    !/^#/ && NF > 2 { v[$3] = $1 }
    function per(e) { return (n > 0 && v[e] != "" && v[e] != "<not counted>") ? v[e] / n : "n/a" }
    function sum(a, b) { return (per(a) == "n/a" ? 0 : per(a)) + (per(b) == "n/a" ? 0 : per(b)) }
    END {
      if (n == 0) { printf "| %s | %s | failed |\n", t, p; exit }
      split(b, b0, " "); split(a, a0, " ")
      printf "| %s | %s | %.0f | %.1f | %.1f / %.1f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f |\n", t, p, n,
        per("task-clock") * 1000, (a0[1] - b0[1]) * 1e6 / hz / n, (a0[2] - b0[2]) * 1e6 / hz / n,
        per("context-switches"), per("raw_syscalls:sys_enter"),
        sum("syscalls:sys_enter_epoll_wait", "syscalls:sys_enter_epoll_pwait"), per("syscalls:sys_enter_epoll_ctl"),
        sum("syscalls:sys_enter_recvfrom", "syscalls:sys_enter_recvmsg") + sum("syscalls:sys_enter_read", "syscalls:sys_enter_readv"),
        sum("syscalls:sys_enter_sendto", "syscalls:sys_enter_sendmsg") + sum("syscalls:sys_enter_write", "syscalls:sys_enter_writev"),
        per("syscalls:sys_enter_futex") }' "$out"
}

perf_counts() {  # clients targets...: the table, for each protocol in PERF_PROTOCOLS
  local c=$1 p t; shift
  printf '\n| proxy | protocol | transactions | proxy CPU us/txn | user / kernel us/txn | context switches/txn | syscalls/txn | epoll_wait | epoll_ctl | recv+read | send+write | futex |\n'
  printf '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n'
  for p in $PERF_PROTOCOLS; do
    for t in "$@"; do
      [[ $p == prepared && $t == pgbouncer ]] && t=pgbouncer_session
      [[ -n ${PID[$t]:-} ]] || continue
      say "perf stat: $t -M $p -c $c"
      perf_counts_row "$t" "$p" "$c"
    done
  done
  echo
  echo "Counted with perf stat -p on the proxy process (all its threads) during one ${DURATION}s" \
    "pgbench -S -c $c run each; per transaction of that run. User / kernel: from" \
    "/proc/PID/stat over the same run (clock ticks, so coarser than the CPU column)."
}

perf_profile() {  # target clients: perf record -g during one -S -M prepared run; top symbols
  local target=$1 c=$2 pid
  say "perf: recording $target during -S -M prepared -c $c"
  perf record -g -o "$RUN/perf.data" -p "${PID[$target]}" >"$RUN/perf.log" 2>&1 &
  pid=$!; PIDS+=("$pid")
  sleep 1
  run "$target" select prepared "$c" perf
  kill -INT "$pid" 2>/dev/null; wait "$pid" || true
  report() { perf report -i "$RUN/perf.data" --no-children -g none --stdio "$@" 2>/dev/null \
    | grep -vE '^(#.*)?$' | sed -E 's/[[:space:]-]+$//'; }
  printf '\nperf record -g of %s, -S -M prepared -c %s, %s tps under perf:\n' "$target" "$c" \
    "$(awk -F'\t' '$5=="perf" {printf "%.0f", $6}' "$RUN/results.tsv")"
  echo "by object:"; report --sort dso --percent-limit 1 || true
  echo "top symbols:"; report --sort dso,symbol --percent-limit 0.5 | head -"${PERF_LINES:-40}" || true
  echo "top user-space symbols:"; report --sort dso,symbol | grep -F '[.]' | head -"${PERF_LINES:-40}" || true
  if [[ -n ${PERF_OUT:-} ]]; then
    perf report -i "$RUN/perf.data" --no-children --sort dso,symbol --stdio >"$PERF_OUT" 2>/dev/null || true
  fi
}
