// Mirror-safety classifier on arbitrary bytes: no crash, no hang, and its invariants hold:
// comments never change the result, the schema hook only adds reasons, and the details name
// exactly the reasons found.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "routing/mirror_safety.hpp"

namespace {

using namespace pgshift::routing;

void check(bool ok) {
  if (!ok) std::abort();
}

const MirrorSchema& schema() {
  static const MirrorSchema s = [] {
    MirrorSchema m;
    MirrorTableRisks t;
    t.defaults = {{"id", MirrorUnsafeReason::serial_default},
                  {"at", MirrorUnsafeReason::volatile_default}};
    t.user_triggers = true;
    m.add_table("public", "t", t);
    MirrorTableRisks u;
    u.defaults = {{"Id", MirrorUnsafeReason::identity_default}};
    m.add_table("s", "u", u);
    return m;
  }();
  return s;
}

bool schema_reason(MirrorUnsafeReason r) {
  return r == MirrorUnsafeReason::serial_default || r == MirrorUnsafeReason::identity_default ||
         r == MirrorUnsafeReason::volatile_default || r == MirrorUnsafeReason::trigger;
}

void check_consistent(const MirrorSafety& m) {
  check(m.details.size() == m.reasons.size());
  MirrorUnsafeSet from_details;
  for (const auto& [reason, detail] : m.details) {
    check(!detail.empty());
    from_details.add(reason);
  }
  check(from_details == m.reasons);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view sql(reinterpret_cast<const char*>(data), size);
  for (bool scs : {true, false}) {
    const LexerOptions options{scs};
    const MirrorSafety plain = classify_mirror_safety(sql, nullptr, options);
    const MirrorSafety with_schema = classify_mirror_safety(sql, &schema(), options);
    check_consistent(plain);
    check_consistent(with_schema);
    for (MirrorUnsafeReason r : plain.reasons.to_vector()) {
      check(!schema_reason(r));                // text alone never yields a schema reason
      check(with_schema.reasons.contains(r));  // the schema only adds
    }
    // A leading block comment full of triggers changes nothing.
    const std::string commented = "/* now() random() nextval('s') */ " + std::string(sql);
    check(classify_mirror_safety(commented, &schema(), options).reasons == with_schema.reasons);
  }
  return 0;
}
