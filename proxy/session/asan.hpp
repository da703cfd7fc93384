#pragma once
// AddressSanitizer hooks for memory pgshift manages itself (the session-record slab,
// session_records.cpp), which ASan cannot see into otherwise. PGSHIFT_ASAN is defined in an
// ASan build (GCC's __SANITIZE_ADDRESS__ or Clang's __has_feature); the functions are no-ops
// in every other build.
#include <cstddef>

#if defined(__SANITIZE_ADDRESS__)
#define PGSHIFT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PGSHIFT_ASAN 1
#endif
#endif

#if defined(PGSHIFT_ASAN)
#include <sanitizer/asan_interface.h>
#endif

namespace pgshift::proxy::asan {

// A use of [p, p + n) is reported until unpoison() (ASan builds only).
inline void poison([[maybe_unused]] const void* p, [[maybe_unused]] std::size_t n) {
#if defined(PGSHIFT_ASAN)
  ASAN_POISON_MEMORY_REGION(p, n);
#endif
}

inline void unpoison([[maybe_unused]] const void* p, [[maybe_unused]] std::size_t n) {
#if defined(PGSHIFT_ASAN)
  ASAN_UNPOISON_MEMORY_REGION(p, n);
#endif
}

}  // namespace pgshift::proxy::asan
