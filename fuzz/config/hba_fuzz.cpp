// client_auth.hba_file parsing and matching (config/hba.hpp) on arbitrary bytes: no crash,
// every error names the file and a line, and a parsed file's rules are well formed.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "config/hba.hpp"
#include "fuzz/wire/fuzz_check.hpp"

namespace {

using namespace pgshift::config;

void check_rules(const HbaFile& hba, std::string_view text) {
  int last_line = 0;
  for (const HbaRule& r : hba.rules) {
    FUZZ_CHECK(r.line > last_line);  // in file order, one rule per line
    last_line = r.line;
    FUZZ_CHECK(!r.databases.empty() && !r.users.empty());
    if (!r.any_address) {
      FUZZ_CHECK(r.address.v4 == r.mask.v4);
      auto again = IpAddress::parse(r.address.to_string());
      FUZZ_CHECK(again && again->bytes == r.address.bytes);
    }
  }
  // Matching never crashes; a request is matched by the first rule or by none.
  for (const char* address : {"127.0.0.1", "::1", "10.1.2.3", "2001:db8::7"}) {
    for (bool ssl : {false, true}) {
      HbaRequest req{.user = text.substr(0, 8),
                     .database = "postgres",
                     .address = *IpAddress::parse(address),
                     .ssl = ssl,
                     .physical_replication = ssl};
      const HbaRule* rule = hba.match(req);
      FUZZ_CHECK(rule == nullptr || (rule >= hba.rules.data() &&
                                     rule < hba.rules.data() + hba.rules.size()));
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto r = parse_hba(text, "f");
  FUZZ_CHECK((r.hba == nullptr) == !r.errors.empty());
  for (const auto& e : r.errors) FUZZ_CHECK(e.starts_with("f:"));
  if (r.hba) check_rules(*r.hba, text);
  IpAddress::parse(text);  // any bytes, no crash
  return 0;
}
