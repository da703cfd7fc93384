#!/usr/bin/env bash
# The one command that installs dependencies, builds pgshift and runs every test:
#   scripts/test.sh
# Steps: install-deps.sh, configure build/ (RelWithDebInfo with asserts kept, warnings as
# errors), build with -j2, ctest (unit tests two at a time; integration tests, labelled
# RUN_SERIAL, one at a time against real PostgreSQL 15), then the fuzz smoke run if
# scripts/fuzz.sh exists. Exits non-zero if any step fails. Safe in CI: root, no stdin.
# Environment: BUILD_DIR (default build), JOBS (default 2), CTEST_ARGS (extra ctest args,
# e.g. "-L unit" or "-R fixture").
set -uo pipefail
exec </dev/null

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$(pwd)
build_dir=${BUILD_DIR:-build}
jobs=${JOBS:-2}
read -r -a ctest_extra <<<"${CTEST_ARGS:-}"

declare -a step_names=() step_results=()
failed=0
record() { # record NAME STATUS SECONDS
  step_names+=("$1")
  if [[ $2 -eq 0 ]]; then
    step_results+=("ok      ($3 s)")
  elif [[ $2 -eq 200 ]]; then
    step_results+=("skipped")
  else
    step_results+=("FAILED  (exit $2, $3 s)")
    failed=1
  fi
}
run_step() { # run_step NAME COMMAND...
  local name=$1 start status
  shift
  echo
  echo "==== $name: $*"
  start=$SECONDS
  "$@"
  status=$?
  record "$name" "$status" "$((SECONDS - start))"
  return "$status"
}

run_step "install dependencies" bash scripts/install-deps.sh

build_ok=0
if run_step "configure" cmake -S . -B "$build_dir" -G Ninja \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g" \
  -DPGSHIFT_WERROR=ON -DPGSHIFT_TESTS=ON; then
  run_step "build" cmake --build "$build_dir" -j "$jobs" && build_ok=1
else
  record "build" 200 0
fi

ctest_log=$(mktemp)
trap 'rm -f "$ctest_log"' EXIT
if ((build_ok)); then
  # Unit tests may run two at a time; integration tests are RUN_SERIAL so they run alone.
  echo
  echo "==== tests: ctest --test-dir $build_dir --output-on-failure -j $jobs ${ctest_extra[*]}"
  start=$SECONDS
  ctest --test-dir "$build_dir" --output-on-failure --no-tests=error -j "$jobs" \
    "${ctest_extra[@]}" 2>&1 | tee "$ctest_log"
  record "tests" "${PIPESTATUS[0]}" "$((SECONDS - start))"
else
  record "tests" 200 0
fi

if [[ -f scripts/fuzz.sh ]]; then
  if ((build_ok)); then
    run_step "fuzz smoke" env PGSHIFT_FUZZ_MODE=smoke bash scripts/fuzz.sh
  else
    record "fuzz smoke" 200 0
  fi
fi

passed=0 total=0
if summary=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$ctest_log"); then
  total=$(sed -E 's/.* out of ([0-9]+).*/\1/' <<<"$summary")
  tests_failed=$(sed -E 's/.*passed, ([0-9]+) tests? failed.*/\1/' <<<"$summary")
  passed=$((total - tests_failed))
fi

echo
echo "==== summary ($root)"
for i in "${!step_names[@]}"; do
  printf '  %-22s %s\n' "${step_names[$i]}" "${step_results[$i]}"
done
# The plain "tests: N passed, N failed" line comes last so CI can read it.
if ((failed)); then
  echo "RESULT: FAILED"
else
  echo "RESULT: OK"
fi
if ((total > 0)); then
  echo "tests: $passed passed, $((total - passed)) failed"
fi
exit "$failed"
