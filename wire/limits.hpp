#pragma once
#include <cstdint>

namespace pgshift::wire {

// Frame limits, mirroring the PostgreSQL server (src/include/libpq/pqcomm.h, postgres.c).
struct Limits {
  // Startup packets (StartupMessage, SSLRequest, CancelRequest...): MAX_STARTUP_PACKET_LENGTH.
  std::uint32_t max_startup_length = 10'000;
  // "Small" frontend messages (Sync, Flush, Terminate, Close, Describe, Execute):
  // PQ_SMALL_MESSAGE_LIMIT. Backend messages other than T/D/d/V/E/N/A use
  // max_small_backend_length (libpq's VALID_LONG_MESSAGE_TYPE rule).
  std::uint32_t max_small_length = 10'000;
  std::uint32_t max_small_backend_length = 30'000;
  // Authentication messages ('p'): PG_MAX_AUTH_TOKEN_LENGTH.
  std::uint32_t max_auth_length = 65'535;
  // Every other message: PQ_LARGE_MESSAGE_LIMIT (1 GiB), configurable.
  std::uint32_t max_message_length = 1u << 30;
};

}  // namespace pgshift::wire
