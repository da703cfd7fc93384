// State-file JSON on arbitrary bytes: parse errors are values; whatever
// parses round-trips exactly.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "routing/state_json.hpp"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace pgshift::routing;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const auto f = parse_state_file(in);
  if (f) {
    const auto again = parse_state_file(serialize_state_file(*f));
    check(again.ok() && *again == *f);
  } else {
    check(static_cast<bool>(f.error) && !f.message.empty());
  }
  return 0;
}
