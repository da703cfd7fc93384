# shellcheck shell=bash
# shellcheck disable=SC2034  # PORT, PID and SESSION_FALLBACK are read by bench.sh
# Helpers for scripts/bench.sh: start and stop PostgreSQL, PgBouncer and pgshift in a
# private temporary directory, and clean all of it up on exit (normal end, failure, Ctrl-C).
# Expects RUN, PGBIN, PGSHIFT, PG_PORT to be set by the caller before the start_* calls.

declare -A PORT=() PID=() BIN_OF=()  # BIN_OF: a pgshift target's binary when not $PGSHIFT; per target name: TCP port, process id (proxies only)
PIDS=()                    # every background process this script started, in start order

as_pg() { if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }
own_pg() { if [[ $(id -u) -eq 0 ]]; then chown postgres "$@"; fi; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
say() { echo "bench: $*" >&2; }
die() { say "$*"; exit 1; }

stop_pid() {  # SIGTERM, then SIGKILL after 5 s; reaps the process if it is our child
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$? i pm
  set +e
  trap - INT TERM
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${PIDS[i]}"; done
  if [[ -n "${RUN:-}" && -f "$RUN/pg/postmaster.pid" ]]; then
    pm=$(head -1 "$RUN/pg/postmaster.pid")
    as_pg "$PGBIN/pg_ctl" -D "$RUN/pg" -m immediate -w -t 20 stop >/dev/null 2>&1 || kill -KILL "$pm" 2>/dev/null
    for i in $(seq 1 50); do kill -0 "$pm" 2>/dev/null || break; sleep 0.1; done
  fi
  [[ -n "${RUN:-}" && -d "$RUN" ]] && rm -rf "$RUN"
  exit "$rc"
}

wait_port() {  # port pid log: until the port accepts connections; fails if pid exits first
  local i
  for i in $(seq 1 100); do
    (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || { tail -20 "$3" >&2; die "process $2 exited during startup"; }
    sleep 0.1
  done
  tail -20 "$3" >&2; die "port $1 did not open"
}

start_postgres() {  # initdb, start, load pgbench data at scale $1
  echo bench-pw >"$RUN/pwfile"; own_pg "$RUN/pwfile"
  as_pg "$PGBIN/initdb" -D "$RUN/pg" -U postgres --auth=scram-sha-256 --pwfile="$RUN/pwfile" >/dev/null
  cat >>"$RUN/pg/postgresql.conf" <<CONF
port = $PG_PORT
listen_addresses = '127.0.0.1'
unix_socket_directories = '$RUN'
max_connections = 400
shared_buffers = 256MB
fsync = off
synchronous_commit = off
log_connections = on
CONF
  as_pg "$PGBIN/pg_ctl" -D "$RUN/pg" -l "$RUN/pg.log" -w start >/dev/null
  pgbench -i -s "$1" -q "host=127.0.0.1 port=$PG_PORT user=postgres dbname=postgres" >/dev/null 2>&1 \
    || { tail -20 "$RUN/pg.log" >&2; die "pgbench -i failed"; }
  # Clients of each pooler log in as its own role (superusers, so the workload is the same),
  # and the poolers log in upstream as that role: the server log counts each pooler's logins.
  psql -X -q "host=127.0.0.1 port=$PG_PORT user=postgres dbname=postgres" -c \
    "CREATE ROLE bouncer_up LOGIN SUPERUSER PASSWORD 'bench-pw'; CREATE ROLE shift_up LOGIN SUPERUSER PASSWORD 'bench-pw'"
}
user_of() { case $1 in pgbouncer*|mem_pgbouncer*) echo bouncer_up ;; pgshift*|mem_pgshift*) echo shift_up ;; *) echo postgres ;; esac; }
users_line() {  # role auth: a users-file line; the SCRAM secret as stored by the server, or
  # the password for trust (PgBouncer then logs in upstream with it)
  local secret=bench-pw
  [[ $2 == trust ]] || secret=$(psql -X -At "host=127.0.0.1 port=$PG_PORT user=postgres dbname=postgres" \
    -c "SELECT rolpassword FROM pg_authid WHERE rolname = '$1'")
  printf '"%s" "%s"\n' "$1" "$secret"
}
logins() {  # role: server logins so far, from the server log (log_connections)
  grep -c "connection authorized: user=$1 " "$RUN/pg.log" || true
}

start_pgbouncer() {  # name pool_mode pool_size auth(scram-sha-256|trust)
  local name=$1 port users=$RUN/$1.users
  port=$(free_port)
  users_line bouncer_up "$4" >"$users"  # with SCRAM, PgBouncer logs in upstream with the client's keys
  cat >"$RUN/$name.ini" <<INI
[databases]
postgres = host=127.0.0.1 port=$PG_PORT dbname=postgres
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
listen_backlog = 4096
unix_socket_dir =
auth_type = $4
auth_file = $users
pool_mode = $2
default_pool_size = $3
max_client_conn = 20000
logfile = $RUN/$name.log
pidfile = $RUN/$name.pid
INI
  own_pg "$RUN/$name.ini" "$users"
  local as_user=()
  [[ $(id -u) -eq 0 ]] && as_user=(-u postgres)  # PgBouncer refuses to run as root
  pgbouncer "${as_user[@]}" "$RUN/$name.ini" >"$RUN/$name.out" 2>&1 &
  PIDS+=($!); PID[$name]=$!; PORT[$name]=$port
  wait_port "$port" "$!" "$RUN/$name.out"
}

start_pgshift() {  # name pool_mode pool_size threads auth(scram-sha-256|trust)
  local name=$1 port auth
  port=$(free_port)
  users_line shift_up "$5" >"$RUN/$name.users"
  auth="{ method: $5, users_file: $RUN/$name.users }"
  [[ $5 == trust ]] && auth="{ method: trust }"
  cat >"$RUN/$name.yaml" <<YAML
threads: $4
shutdown_timeout_ms: 1000
log_level: warn
listen: { host: 127.0.0.1, port: $port, backlog: 4096 }
admin: { enabled: false }
client_auth: $auth
routes:
  - name: bench
    client_database: postgres
    source: { host: 127.0.0.1, port: $PG_PORT, user: shift_up, password: bench-pw }
    pool: { mode: $2, size: $3, max_client_connections: 20000 }
YAML
  local check bin=${BIN_OF[$name]:-$PGSHIFT}
  check=$("$bin" check-config "$RUN/$name.yaml" 2>&1) || { echo "$check" >&2; die "pgshift check-config failed"; }
  "$bin" --config "$RUN/$name.yaml" >"$RUN/$name.log" 2>&1 &
  PIDS+=($!); PID[$name]=$!; PORT[$name]=$port
  wait_port "$port" "$!" "$RUN/$name.log"
  if [[ $2 == transaction ]] && grep -q 'transaction is not implemented' "$RUN/$name.log"; then
    SESSION_FALLBACK=1
  fi
}

check_alive() {  # target: fail with its log if that proxy has exited
  [[ -z ${PID[$1]:-} ]] || kill -0 "${PID[$1]}" 2>/dev/null && return 0
  tail -20 "$RUN/$1.log" "$RUN/$1.out" 2>/dev/null >&2; die "$1 (pid ${PID[$1]}) has exited"
}
stop_target() { stop_pid "${PID[$1]}"; }
