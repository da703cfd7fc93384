#!/bin/bash
# Runs `pgshift check-config` on the example configurations of deploy/sidecar:
#   docker-compose/pgshift.yaml
#   kubernetes/configmap.yaml (the pgshift.yaml embedded in the ConfigMap)
#
#   deploy/sidecar/check-configs.sh [PATH/TO/pgshift]     (default: build/proxy/pgshift)
#
# check-config reads every file a configuration names (secrets, users file, CA bundle), so
# the absolute container paths are rewritten to stand-in files in a temporary directory:
#   /var/run/secrets/pgshift -> $tmp/secrets   /etc/ssl/rds -> $tmp/rds
#   /var/lib/pgshift         -> $tmp/state
# and the ${env:...} variables get stand-in values. No network access is needed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
pgshift=${1:-$root/build/proxy/pgshift}
[[ -x $pgshift ]] || { echo "check-configs: no pgshift binary at $pgshift" >&2; exit 2; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/secrets" "$tmp/rds" "$tmp/state"

# Stand-in secrets: any non-empty value will do.
for f in admin-token target-password source-user-management-password \
         source-exercises-password source-scores-password; do
  printf 'stand-in-%s\n' "$f" > "$tmp/secrets/$f"
done
printf '"app" "stand-in password"\n' > "$tmp/secrets/users.txt"
export SOURCE_USER_MANAGEMENT_PASSWORD=stand-in SOURCE_EXERCISES_PASSWORD=stand-in \
       SOURCE_SCORES_PASSWORD=stand-in

# Stand-in CA bundle: it must be a parseable PEM certificate, not the real RDS bundle.
ca=
for c in /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt; do
  [[ -r $c ]] && { ca=$c; break; }
done
if [[ -n $ca ]]; then
  cp "$ca" "$tmp/rds/global-bundle.pem"
else
  openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=stand-in-ca \
    -keyout "$tmp/rds/key.pem" -out "$tmp/rds/global-bundle.pem" 2>/dev/null
fi

rewrite() {
  sed -e "s#/var/run/secrets/pgshift#$tmp/secrets#g" \
      -e "s#/etc/ssl/rds#$tmp/rds#g" \
      -e "s#/var/lib/pgshift#$tmp/state#g"
}

# The ConfigMap's data."pgshift.yaml" block scalar: the lines after `  pgshift.yaml: |`,
# less their 4-space indentation, up to the next less-indented line.
extract_configmap() {
  awk '
    /^  pgshift\.yaml: \|$/ { inside = 1; next }
    inside && /^    / { print substr($0, 5); next }
    inside && /^$/ { print ""; next }
    inside { exit }
  ' "$1"
}

status=0
check() {  # name, file
  if "$pgshift" check-config "$2"; then
    echo "ok:   $1"
  else
    echo "FAIL: $1"
    status=1
  fi
}

rewrite < "$here/docker-compose/pgshift.yaml" > "$tmp/compose.yaml"
check docker-compose/pgshift.yaml "$tmp/compose.yaml"

extract_configmap "$here/kubernetes/configmap.yaml" | rewrite > "$tmp/kubernetes.yaml"
[[ -s $tmp/kubernetes.yaml ]] || { echo "check-configs: no pgshift.yaml in configmap.yaml" >&2; exit 1; }
check 'kubernetes/configmap.yaml data."pgshift.yaml"' "$tmp/kubernetes.yaml"

exit "$status"
