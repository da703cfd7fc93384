#pragma once
// A property violated by a fuzz input: trap so libFuzzer saves the input as a crash.
#define FUZZ_CHECK(cond)           \
  do {                             \
    if (!(cond)) __builtin_trap(); \
  } while (false)
