#include "routing/errc.hpp"

namespace pgshift::routing {
namespace {

class Category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "pgshift.routing"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::ok:
        return "ok";
      case errc::invalid_read_percent:
        return "invalid read percent";
      case errc::invalid_transition:
        return "invalid phase transition";
      case errc::bad_json:
        return "bad JSON";
      case errc::unsupported_version:
        return "unsupported state file version";
      case errc::unknown_phase:
        return "unknown phase";
    }
    return "unknown routing error";
  }
};

}  // namespace

const std::error_category& routing_category() noexcept {
  static const Category category;
  return category;
}

}  // namespace pgshift::routing
