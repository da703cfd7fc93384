#!/usr/bin/env bash
# Conformance run (issue 14): PostgreSQL 15's own regression suite (pg_regress) directly
# against a fresh cluster and through pgshift in session mode against another fresh cluster
# of the same kind; fails on any test that passes directly but not through pgshift.
#
#   scripts/conformance.sh [--short | --full | --schedule FILE]
#
# --full (default): src/test/regress/parallel_schedule, all 217 tests (a few minutes).
# --short: a handful of tests that exercise what a proxy can get wrong (parameters and
#   RESET, temporary objects and two-phase commit, LISTEN/NOTIFY, COPY, prepared statements,
#   portals, transactions); this is what ctest (`conformance_short`) runs.
#
# The regression sources come from Debian's postgresql-15 source package at the installed
# version (`apt-get source`, which needs the deb-src line scripts/install-deps.sh adds);
# regress.so is built with PGXS (postgresql-server-dev-15). Both are cached in
# CONFORMANCE_CACHE [build/conformance-cache].
#
# pgshift runs with one route `client_database: "*"`, `credentials: passthrough`, session
# pooling, SCRAM client auth; the clusters use SCRAM too (same password, PGPASSWORD).
#
# Environment: PGSHIFT_BIN [build/proxy/pgshift], PG_BINDIR [/usr/lib/postgresql/15/bin],
#   CONFORMANCE_CACHE, KEEP=1 keeps the run directory (results, diffs, logs),
#   CONFORMANCE_SKIP_DIRECT=1 runs only through pgshift (then every failure counts),
#   POOL_MODE [session]: transaction runs the suite through transaction pooling instead
#   (informative: session state is pinned there, see docs/pooling.md).
# Output: per-side counts, the tests that fail only through pgshift with their diffs, and a
# final "conformance: N passed, N failed" line (through pgshift, over the schedule).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
PGBIN=${PG_BINDIR:-/usr/lib/postgresql/15/bin}
PGSHIFT=${PGSHIFT_BIN:-$ROOT/build/proxy/pgshift}
CACHE=${CONFORMANCE_CACHE:-$ROOT/build/conformance-cache}
MODE=full
SCHEDULE_FILE=""
case "${1:-}" in
  "" | --full) ;;
  --short) MODE=short ;;
  --schedule) MODE=custom; SCHEDULE_FILE=$(realpath "$2") ;;
  *) echo "usage: $0 [--short | --full | --schedule FILE]" >&2; exit 2 ;;
esac

say() { echo "conformance: $*" >&2; }
die() { say "$*"; exit 1; }
as_pg() { if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
[[ -x $PGSHIFT ]] || die "no pgshift binary at $PGSHIFT (build it: ninja -C build pgshift)"
[[ -x $PGBIN/initdb ]] || die "no PostgreSQL 15 server binaries in $PGBIN (scripts/install-deps.sh)"
command -v pg_config >/dev/null || die "pg_config missing: apt-get install postgresql-server-dev-15"

# ---- sources and regress.so, cached per installed version ----
version=$(dpkg-query -W -f='${Version}' postgresql-15)
upstream=${version%%-*}
src=$CACHE/postgresql-$upstream/src/test/regress
lib=$CACHE/lib-$version
if [[ ! -f $src/parallel_schedule ]]; then
  mkdir -p "$CACHE/download"
  say "fetching the postgresql-15 $version source package"
  (cd "$CACHE/download" && apt-get source --download-only "postgresql-15=$version" >/dev/null 2>&1) \
    || die "apt-get source postgresql-15=$version failed: is a deb-src line configured (scripts/install-deps.sh adds one)?"
  tar -xjf "$CACHE/download/postgresql-15_$upstream.orig.tar.bz2" -C "$CACHE" \
    "postgresql-$upstream/src/test/regress"
fi
if [[ ! -f $lib/regress.so ]]; then
  say "building regress.so with PGXS"
  mkdir -p "$lib"
  cp "$src/regress.c" "$lib/"
  printf 'MODULES = regress\nPG_CONFIG = pg_config\nPGXS := $(shell $(PG_CONFIG) --pgxs)\ninclude $(PGXS)\n' \
    >"$lib/Makefile"
  nice -n 10 make -s -C "$lib" with_llvm=no >/dev/null || die "building regress.so failed"
  # The triggers test loads contrib/spi's autoinc and refint from the same directory.
  pkglib=$(pg_config --pkglibdir)
  for m in autoinc refint; do ln -sf "$pkglib/$m.so" "$lib/$m.so"; done
fi

# ---- a private run directory, cleaned up on exit ----
RUN=$(mktemp -d /tmp/pgshift-conformance.XXXXXX)
chmod 755 "$RUN"
PIDS=()
cleanup() {
  local rc=$? pid d
  set +e
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
  for d in direct proxied; do
    [[ -f $RUN/$d/pg/postmaster.pid ]] && as_pg "$PGBIN/pg_ctl" -D "$RUN/$d/pg" -m immediate -w stop >/dev/null 2>&1
  done
  if [[ ${KEEP:-0} == 1 ]]; then say "kept $RUN"; else rm -rf "$RUN"; fi
  exit "$rc"
}
trap cleanup EXIT INT TERM

# The regression files are read (COPY FROM) and written (results/) by the server too.
cp -r "$src" "$RUN/regress"
# The server loads regress.so (and autoinc, refint) as the postgres user: from the run
# directory, whatever the permissions of the checkout.
mkdir -p "$RUN/lib"
cp -L "$lib"/*.so "$RUN/lib/"
if [[ $MODE == short ]]; then
  cat >"$RUN/schedule" <<'SCHED'
test: test_setup
test: boolean text int4 float8 strings numerology
test: create_function_c create_misc create_table create_type create_view
test: copy copyselect copydml guc prepare transactions
test: prepared_xacts async temp plpgsql sequence
SCHED
elif [[ $MODE == custom ]]; then
  cp "$SCHEDULE_FILE" "$RUN/schedule"
else
  cp "$src/parallel_schedule" "$RUN/schedule"
fi
export PGPASSWORD=conformance-pw
echo "$PGPASSWORD" >"$RUN/pwfile"
[[ $(id -u) -eq 0 ]] && chown -R postgres "$RUN"

start_cluster() { # name port
  local dir=$RUN/$1
  as_pg mkdir -p "$dir"
  as_pg "$PGBIN/initdb" -D "$dir/pg" -U postgres --auth=scram-sha-256 --pwfile="$RUN/pwfile" \
    --locale=C -E UTF8 >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
  as_pg tee -a "$dir/pg/postgresql.conf" >/dev/null <<CONF
port = $2
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
max_connections = 200
max_prepared_transactions = 10
fsync = off
CONF
  as_pg "$PGBIN/pg_ctl" -D "$dir/pg" -l "$dir/pg.log" -w start >/dev/null \
    || { tail -20 "$dir/pg.log" >&2; die "cluster $1 did not start"; }
}

run_regress() { # name port -> $RUN/name/out
  local out=$RUN/$1/out
  as_pg mkdir -p "$out"
  say "pg_regress $1 (port $2)"
  (cd "$RUN/regress" && as_pg env PGPASSWORD="$PGPASSWORD" nice -n 10 \
    "$(pg_config --pgxs | xargs dirname | xargs dirname)/test/regress/pg_regress" \
    --inputdir="$RUN/regress" --outputdir="$out" --bindir="$PGBIN" --dlpath="$RUN/lib" \
    --schedule="$RUN/schedule" --host=127.0.0.1 --port="$2" --user=postgres \
    >"$RUN/$1/pg_regress.log" 2>&1) || true
}

# "name status" per test from pg_regress's output (ok, FAILED, failed (ignored)).
results() {
  sed -nE 's/^(test|ok|not ok|) *[0-9]* *[-+]? *([A-Za-z0-9_.]+) +\.\.\. (ok|FAILED|failed \(ignored\)).*/\2 \3/p' \
    "$RUN/$1/pg_regress.log" | sed 's/failed (ignored)/ignored/'
}

total=$(grep -E '^test:' "$RUN/schedule" | sed 's/^test://' | wc -w)
if [[ ${CONFORMANCE_SKIP_DIRECT:-0} != 1 ]]; then
  port=$(free_port)
  start_cluster direct "$port"
  run_regress direct "$port"
  as_pg "$PGBIN/pg_ctl" -D "$RUN/direct/pg" -m fast -w stop >/dev/null
fi

port=$(free_port)
start_cluster proxied "$port"
proxy_port=$(free_port)
secret=$(psql -X -At "host=127.0.0.1 port=$port user=postgres dbname=postgres" \
  -c "SELECT rolpassword FROM pg_authid WHERE rolname = 'postgres'")
printf '"postgres" "%s"\n' "$secret" >"$RUN/users.txt"
cat >"$RUN/pgshift.yaml" <<YAML
threads: 2
log_level: warn
listen: { host: 127.0.0.1, port: $proxy_port }
admin: { enabled: false }
client_auth: { method: scram-sha-256, users_file: $RUN/users.txt }
routes:
  - name: all
    client_database: "*"
    source: { host: 127.0.0.1, port: $port, credentials: passthrough }
    pool: { mode: ${POOL_MODE:-session}, size: 40, max_client_connections: 200 }
YAML
"$PGSHIFT" check-config "$RUN/pgshift.yaml" >/dev/null || die "pgshift check-config failed"
"$PGSHIFT" --config "$RUN/pgshift.yaml" >"$RUN/pgshift.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do
  (echo >"/dev/tcp/127.0.0.1/$proxy_port") 2>/dev/null && break
  kill -0 "${PIDS[0]}" 2>/dev/null || { tail -20 "$RUN/pgshift.log" >&2; die "pgshift exited"; }
  sleep 0.1
done
run_regress proxied "$proxy_port"

results proxied | sort >"$RUN/proxied.txt"
ok_proxied=$(grep -c ' ok$' "$RUN/proxied.txt" || true)
if [[ ${CONFORMANCE_SKIP_DIRECT:-0} != 1 ]]; then
  results direct | sort >"$RUN/direct.txt"
  ok_direct=$(grep -c ' ok$' "$RUN/direct.txt" || true)
  say "directly: $ok_direct/$total ok; through pgshift: $ok_proxied/$total ok"
  # A test counts against pgshift if it passed directly and did not pass through pgshift
  # (failed, ignored-and-failed, or never reported because pg_regress stopped).
  regressions=$(join -a1 -e missing -o 0,1.2,2.2 <(grep ' ok$' "$RUN/direct.txt") "$RUN/proxied.txt" \
    | awk '$3 != "ok" {print $1}')
else
  say "through pgshift: $ok_proxied/$total ok"
  regressions=$(awk '$2 != "ok" {print $1}' "$RUN/proxied.txt")
  [[ $ok_proxied -lt $total && -z $regressions ]] && regressions="(pg_regress did not finish)"
fi
# Differences inherent to pooling, each accepted only when its diff is exactly the one known:
# test -> the changed lines of its diff ('|' between lines).
declare -A KNOWN=(
  # `\c` then "sessions > before" in pg_stat_database: that counter counts backends started,
  # and a pooled session reuses a backend (docs/pooling.md, "Pools and pool keys").
  [stats]='- t|+ f'
)
known_found=()
kept=()
for t in $regressions; do
  if [[ -n ${KNOWN[$t]:-} && -f $RUN/proxied/out/regression.diffs ]]; then
    changed=$(awk -v t="/$t.out" '/^diff /{on = index($0, t) > 0; next} on && /^[-+]/ && !/^(---|\+\+\+) /' \
      "$RUN/proxied/out/regression.diffs" | paste -sd'|')
    if [[ $changed == "${KNOWN[$t]}" ]]; then
      known_found+=("$t")
      continue
    fi
  fi
  kept+=("$t")
done
regressions="${kept[*]}"
((${#known_found[@]} == 0)) || say "known pooling differences (diff exactly as expected): ${known_found[*]}"
if [[ -n $regressions ]]; then
  say "tests that pass directly but fail through pgshift:" $regressions
  [[ -f $RUN/proxied/out/regression.diffs ]] && head -c 20000 "$RUN/proxied/out/regression.diffs" >&2
  tail -20 "$RUN/proxied/pg_regress.log" >&2
  grep -iE 'error|warn' "$RUN/pgshift.log" | tail -20 >&2 || true
fi
n_bad=$(wc -w <<<"$regressions")
echo "conformance: ${#known_found[@]} known pooling difference(s) accepted"
echo "conformance: $((total - n_bad)) passed, $n_bad failed"
[[ $n_bad -eq 0 ]]
