// Fuzzes decode_startup. Properties: a decoded packet re-decodes the same from exactly its own
// bytes, every shorter prefix needs more, and builder.cpp rebuilds the same bytes.
#include <cstddef>
#include <cstdint>
#include <span>

#include "fuzz_check.hpp"
#include "wire/builder.hpp"
#include "wire/startup.hpp"

using namespace pgshift::wire;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> input(data, size);
  const Limits limits;
  const StartupResult r = decode_startup(input, limits);
  switch (r.kind) {
    case StartupKind::need_more:
      FUZZ_CHECK(r.consumed == 0 && size < limits.max_startup_length);
      return 0;
    case StartupKind::error:
      FUZZ_CHECK(r.consumed == 0 && r.error);
      return 0;
    default:
      break;
  }
  FUZZ_CHECK(r.consumed >= 8 && r.consumed <= size && r.consumed <= limits.max_startup_length);
  const auto packet = input.first(r.consumed);
  const StartupResult again = decode_startup(packet, limits);
  FUZZ_CHECK(again.kind == r.kind && again.consumed == r.consumed);
  FUZZ_CHECK(decode_startup(packet.first(packet.size() - 1), limits).kind ==
             StartupKind::need_more);

  Bytes built;
  switch (r.kind) {
    case StartupKind::startup: {
      const std::string* user = r.startup.find("user");
      FUZZ_CHECK(user != nullptr && !user->empty());
      FUZZ_CHECK((r.startup.protocol >> 16) == 3);
      FUZZ_CHECK(again.startup.params == r.startup.params);
      if (r.startup.protocol != kProtocol3) return 0;
      startup_message(built, r.startup.params);
      break;
    }
    case StartupKind::ssl_request:
      ssl_request(built);
      break;
    case StartupKind::cancel_request:
      FUZZ_CHECK(again.cancel == r.cancel);
      cancel_request(built, r.cancel.pid, r.cancel.secret);
      break;
    default:
      return 0;  // GSSENCRequest: no builder
  }
  FUZZ_CHECK(built.size() == packet.size() &&
             std::equal(built.begin(), built.end(), packet.begin()));
  return 0;
}
