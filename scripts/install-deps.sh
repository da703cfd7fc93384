#!/usr/bin/env bash
# Installs every build, test and demo dependency of pgshift from Debian 12 packages.
# Idempotent: when everything is already installed it touches nothing and takes a second.
# Runs as root, or through sudo otherwise. Never reads stdin (CI has none).
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build ccache
  clang libclang-rt-14-dev # libFuzzer and sanitizers for fuzz/
  # libraries
  libboost1.81-dev libboost-json1.81-dev libssl-dev openssl libpq-dev libyaml-cpp-dev
  prometheus-cpp-dev libxxhash-dev googletest libgtest-dev libgmock-dev
  # real servers and clients for integration tests, the demo and the benchmark
  postgresql-15 postgresql-client-15 postgresql-contrib pgbouncer
  python3 python3-psycopg2 nodejs npm
  # ps, pgrep, ss for scripts and debugging
  procps iproute2
)

if [[ $(id -u) -eq 0 ]]; then
  as_root=()
else
  as_root=(sudo -n)
fi

# A package counts as present when dpkg says it is installed. nodejs and npm may also come
# from NodeSource's nodejs package (which bundles npm and conflicts with Debian's npm), so a
# working command is enough for those two.
is_present() {
  local pkg=$1
  case $pkg in
    nodejs) command -v node >/dev/null 2>&1 && return 0 ;;
    npm) command -v npm >/dev/null 2>&1 && return 0 ;;
  esac
  local status
  status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null || true)
  [[ $status == ii* ]]
}

missing=()
for pkg in "${PACKAGES[@]}"; do
  is_present "$pkg" || missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#PACKAGES[@]} packages already installed"
else
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt_opts=(-o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confdef
    -o Dpkg::Options::=--force-confold)
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" update
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" install -y \
    --no-install-recommends "${missing[@]}" </dev/null
fi

# The conformance run (scripts/conformance.sh) needs PostgreSQL 15's regression sources from
# Debian's source package (`apt-get source`, so a deb-src line) and the server headers for
# PGXS, at exactly the installed server's version.
src_list=/etc/apt/sources.list.d/pgshift-deb-src.sources
if [[ ! -f $src_list ]] && ! grep -rqs '^deb-src\|^Types:.*deb-src' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  echo "install-deps: adding deb-src lines for Debian 12 ($src_list)"
  "${as_root[@]}" tee "$src_list" >/dev/null <<'SOURCES'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
  "${as_root[@]}" apt-get -o DPkg::Lock::Timeout=600 update >/dev/null
fi
pg_version=$(dpkg-query -W -f='${Version}' postgresql-15)
dev_version=$(dpkg-query -W -f='${Version}' postgresql-server-dev-15 2>/dev/null || true)
if [[ $dev_version != "$pg_version" ]]; then
  echo "install-deps: installing postgresql-server-dev-15=$pg_version (PGXS, for conformance.sh)"
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 \
    install -y --no-install-recommends "postgresql-server-dev-15=$pg_version" </dev/null
fi

# The Debian packages create and start a "main" PostgreSQL cluster on 5432 and a PgBouncer on
# 6432. Our tests, demo and benchmark start their own servers on free ports, so keep the
# packaged ones out of the way: stop them and keep them from starting at boot.
if command -v pg_lsclusters >/dev/null 2>&1; then
  while read -r version cluster _port status _rest; do
    [[ -n $version && -n $cluster ]] || continue
    conf=/etc/postgresql/$version/$cluster/start.conf
    if [[ -f $conf ]] && grep -qx auto "$conf"; then
      echo manual | "${as_root[@]}" tee "$conf" >/dev/null
    fi
    if [[ $status == online* ]]; then
      echo "install-deps: stopping packaged cluster $version/$cluster"
      "${as_root[@]}" pg_ctlcluster "$version" "$cluster" stop || true
    fi
  done < <(pg_lsclusters --no-header 2>/dev/null || true)
fi
if [[ -f /etc/default/pgbouncer || -x /etc/init.d/pgbouncer ]]; then
  if [[ -d /run/systemd/system ]]; then
    "${as_root[@]}" systemctl disable --now pgbouncer >/dev/null 2>&1 || true
  elif [[ -x /etc/init.d/pgbouncer ]] && /etc/init.d/pgbouncer status >/dev/null 2>&1; then
    echo "install-deps: stopping packaged pgbouncer"
    "${as_root[@]}" /etc/init.d/pgbouncer stop >/dev/null 2>&1 || true
  fi
fi

# Integration tests run PostgreSQL as this user when they run as root.
if ! id postgres >/dev/null 2>&1; then
  echo "install-deps: the postgres OS user is missing (postgresql-15 should create it)" >&2
  exit 1
fi
echo "install-deps: done"
