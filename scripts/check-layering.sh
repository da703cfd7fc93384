#!/usr/bin/env bash
# Fails when a file in proxy/ includes a header from a proxy/ folder it may not depend on.
# The allowed dependencies are those of docs/architecture.md ("Folders and dependencies")
# and of proxy/CMakeLists.txt; change all three together.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

declare -A allowed=(
  [telemetry]=""
  [pgclient]=""
  [api]=""
  [ctl]="api"
  [runtime]="telemetry"
  [control]="runtime telemetry pgclient"
  [mirror]="control runtime telemetry"
  [session]="control runtime telemetry"
  [admin]="api control runtime telemetry"
  [migrate]="control runtime telemetry pgclient"
  [app]="*"
)

bad=0
for dir in proxy/*/; do
  folder=$(basename "$dir")
  if [[ ! -v allowed[$folder] ]]; then
    echo "proxy/$folder: folder not in the dependency table of scripts/check-layering.sh"
    bad=1
    continue
  fi
  [[ ${allowed[$folder]} == "*" ]] && continue
  while IFS=: read -r file line include; do
    dep=$(sed -E 's|.*"proxy/([a-z_]+)/.*|\1|' <<<"$include")
    [[ $dep == "$folder" ]] && continue
    if [[ " ${allowed[$folder]} " != *" $dep "* ]]; then
      echo "$file:$line: proxy/$folder may not include proxy/$dep ($include)"
      bad=1
    fi
  done < <(grep -rnE '^#include "proxy/' "$dir" || true)
done
if ((bad)); then
  echo "layering check failed: see the allowed dependencies in docs/architecture.md"
  exit 1
fi
echo "layering check: OK"
