#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/*/: wire/, routing/, config/, and admin/ for the admin
# API's request parsing) with clang (ASan + UBSan) and runs each for a bounded time against its
# seed corpus (fuzz/<lib>/corpus/<target>/, where every crash input found is kept so it is
# replayed on every run).
#   scripts/fuzz.sh                  # 60 s per target
#   PGSHIFT_FUZZ_MODE=smoke scripts/fuzz.sh   # 15 s per target (CI)
#   FUZZ_SECONDS=600 scripts/fuzz.sh # longer local runs
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [[ "${PGSHIFT_FUZZ_MODE:-}" == smoke ]]; then seconds=${FUZZ_SECONDS:-15}; else seconds=${FUZZ_SECONDS:-60}; fi
build=${FUZZ_BUILD_DIR:-build-fuzz}

CXX=clang++ CC=clang cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DPGSHIFT_FUZZ=ON -DPGSHIFT_TESTS=OFF >/dev/null
targets=()
for cm in fuzz/*/CMakeLists.txt; do
  while read -r t; do targets+=("$t"); done < <(sed -nE 's/^pgshift_add_fuzzer\(([a-z_0-9]+) .*/\1/p' "$cm")
done
cmake --build "$build" -j "${JOBS:-2}" --target "${targets[@]}"

status=0
for t in "${targets[@]}"; do
  lib=$(sed -E 's/^fuzz_([a-z]+)_.*/\1/' <<<"$t")
  corpus=fuzz/$lib/corpus/$t
  mkdir -p "$corpus"
  work=$(mktemp -d)
  bin=$(find "$build/fuzz" -type f -name "$t" | head -n1)
  echo "== $t: ${seconds}s, corpus $corpus"
  # New inputs go to a scratch dir; the committed corpus only grows by crash inputs.
  if ! "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      -artifact_prefix="$corpus/crash-" -print_final_stats=0 "$work" "$corpus" \
      >"$work.log" 2>&1; then
    echo "FUZZ FAILURE in $t (input kept in $corpus):"
    tail -n 40 "$work.log"
    status=1
  else
    grep -E '^Done|#[0-9]+.*DONE' "$work.log" | tail -n 1 || true
  fi
  rm -rf "$work" "$work.log"
done
exit $status
