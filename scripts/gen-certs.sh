#!/usr/bin/env bash
# gen-certs.sh DIR [hostname-or-ip ...]
#
# Test and demo PKI, shaped like RDS: a private CA and a server certificate it signs.
#   DIR/ca.crt, DIR/ca.key           the CA (reused if DIR already holds one)
#   DIR/server.crt, DIR/server.key   server certificate, SAN = the arguments
#                                    (default: localhost 127.0.0.1)
#   DIR/wrong-ca.crt, wrong-ca.key   an unrelated CA, for "wrong CA" negative tests
# Set CERT_NAME=NAME to write NAME.crt/NAME.key instead of server.* (another certificate from
# the same CA, e.g. one whose SAN does not match, for wrong-hostname tests).
# Private keys are mode 0600. Needs only the openssl CLI.
set -euo pipefail

if (($# < 1)); then
  echo "usage: $0 DIR [hostname-or-ip ...]" >&2
  exit 2
fi
dir=$1
shift
hosts=("$@")
((${#hosts[@]})) || hosts=(localhost 127.0.0.1)
name=${CERT_NAME:-server}
days=${CERT_DAYS:-825}

mkdir -p "$dir"
cd "$dir"
umask 077

quiet() { # runs a command, showing its output only if it fails
  local out
  if ! out=$("$@" 2>&1); then
    echo "$out" >&2
    return 1
  fi
}

make_ca() { # make_ca BASENAME COMMON_NAME
  quiet openssl req -x509 -new -newkey rsa:2048 -nodes -sha256 -days 3650 \
    -keyout "$1.key" -out "$1.crt" -subj "/O=pgshift test/CN=$2" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "subjectKeyIdentifier=hash"
  chmod 0644 "$1.crt"
  chmod 0600 "$1.key"
}

[[ -f ca.crt && -f ca.key ]] || make_ca ca "pgshift test CA"
[[ -f wrong-ca.crt && -f wrong-ca.key ]] || make_ca wrong-ca "pgshift unrelated CA"

san=()
for h in "${hosts[@]}"; do
  if [[ $h =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ || $h == *:* ]]; then
    san+=("IP:$h")
  else
    san+=("DNS:$h")
  fi
done
san_list=$(IFS=,; echo "${san[*]}")

ext=$(mktemp "$name.ext.XXXXXX")
csr=$(mktemp "$name.csr.XXXXXX")
trap 'rm -f "$ext" "$csr"' EXIT
cat >"$ext" <<EOF
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = $san_list
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid,issuer
EOF

quiet openssl req -new -newkey rsa:2048 -nodes -sha256 -keyout "$name.key" -out "$csr" \
  -subj "/O=pgshift test/CN=${hosts[0]}"
quiet openssl x509 -req -in "$csr" -CA ca.crt -CAkey ca.key -set_serial "0x$(openssl rand -hex 16)" \
  -days "$days" -sha256 -extfile "$ext" -out "$name.crt"
chmod 0644 "$name.crt"
chmod 0600 "$name.key"
echo "gen-certs: $dir/$name.crt for ${hosts[*]} signed by $dir/ca.crt"
