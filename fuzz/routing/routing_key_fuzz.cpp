// Routing-key extraction on arbitrary bytes: sqlcommenter comments, startup options, URL
// decoding and the per-session key state fed by the classifier.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "routing/classifier.hpp"
#include "routing/routing_key.hpp"

namespace {

using namespace pgshift::routing;

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);

  const std::string decoded = url_decode(in);
  check(decoded.size() <= in.size());

  if (auto v = parse_sqlcommenter(in, "user_id")) check(!v->empty() && v->size() <= size);
  if (auto v = key_from_comment(in, "user_id")) check(!v->empty() && v->size() <= size);
  if (auto v = key_from_options(in, "pgshift.routing_key")) check(!v->empty());

  pgshift::config::RoutingKey cfg;
  const StartupParams params = {{"user", "app"}, {"options", std::string(in)}};
  if (auto v = key_from_startup(params, cfg)) check(!v->empty());

  static const Classifier classifier;
  const Classification c = classifier.classify(in);
  KeyState state(key_from_options(in, "pgshift.routing_key"), "conn-1");
  if (c.routing_key_change) state.apply(*c.routing_key_change);
  const ResolvedKey k = state.resolve(c.comment_routing_key);
  check(!k.key.empty());
  state.end_transaction();
  check(!state.resolve(std::nullopt).key.empty());
  return 0;
}
