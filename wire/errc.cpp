#include "wire/errc.hpp"

namespace pgshift::wire {
namespace {

class WireCategory final : public std::error_category {
 public:
  const char* name() const noexcept override { return "pgshift.wire"; }

  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::ok:
        return "success";
      case errc::length_too_small:
        return "message length field too small";
      case errc::message_too_large:
        return "message length exceeds the limit";
      case errc::unknown_message_type:
        return "message type not valid in this direction";
      case errc::truncated_message:
        return "message body shorter than its fields";
      case errc::malformed_message:
        return "malformed message";
      case errc::unsupported_protocol:
        return "unsupported protocol version";
      case errc::auth_failed:
        return "authentication failed";
      case errc::channel_binding_refused:
        return "SCRAM channel binding is not supported";
      case errc::bad_scram_message:
        return "malformed SCRAM message";
    }
    return "unknown pgshift.wire error";
  }
};

}  // namespace

const std::error_category& wire_category() noexcept {
  static const WireCategory category;
  return category;
}

}  // namespace pgshift::wire
