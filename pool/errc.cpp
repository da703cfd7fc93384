#include "pool/errc.hpp"

#include <string>

namespace pgshift::pool {
namespace {

// boost::system::error_category has a protected non-virtual destructor by design; categories
// are static singletons never deleted through a base pointer.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnon-virtual-dtor"
class PoolCategory final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "pgshift.pool"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::ok:
        return "success";
      case errc::tls_not_supported:
        return "server does not support TLS";
      case errc::protocol_violation:
        return "server violated the protocol";
      case errc::server_error:
        return "server reported an error";
      case errc::unsupported_auth_method:
        return "unsupported authentication method";
      case errc::unsupported_protocol_version:
        return "server does not support protocol 3.0 as requested";
      case errc::missing_credentials:
        return "no credentials usable for the requested authentication method";
      case errc::timed_out:
        return "timed out";
      case errc::wait_timeout:
        return "no server connection available within query_wait_timeout";
      case errc::pool_closed:
        return "server connection pool is closed";
      case errc::check_failed:
        return "server connection failed its health check or reset";
    }
    return "unknown pool error";
  }
};
#pragma GCC diagnostic pop

}  // namespace

const boost::system::error_category& pool_category() noexcept {
  static const PoolCategory category;
  return category;
}

}  // namespace pgshift::pool
