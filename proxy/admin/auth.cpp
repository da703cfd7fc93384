#include "proxy/admin/auth.hpp"

#include <openssl/crypto.h>

#include <cctype>

namespace pgshift::proxy {
namespace {

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

}  // namespace

AdminAuth check_bearer(std::string_view header, const std::string* expected) {
  if (expected == nullptr || expected->empty()) return AdminAuth::not_configured;
  // Optional whitespace around the value, then the scheme (case-insensitive), then the token.
  while (!header.empty() && (header.front() == ' ' || header.front() == '\t')) {
    header.remove_prefix(1);
  }
  while (!header.empty() && (header.back() == ' ' || header.back() == '\t')) {
    header.remove_suffix(1);
  }
  if (header.empty()) return AdminAuth::missing;
  constexpr std::string_view kScheme = "Bearer";
  if (header.size() <= kScheme.size() || !iequals(header.substr(0, kScheme.size()), kScheme) ||
      (header[kScheme.size()] != ' ' && header[kScheme.size()] != '\t')) {
    return AdminAuth::invalid;
  }
  std::string_view token = header.substr(kScheme.size());
  while (!token.empty() && (token.front() == ' ' || token.front() == '\t')) token.remove_prefix(1);
  if (token.size() != expected->size()) return AdminAuth::invalid;
  return CRYPTO_memcmp(token.data(), expected->data(), token.size()) == 0 ? AdminAuth::ok
                                                                          : AdminAuth::invalid;
}

}  // namespace pgshift::proxy
