#pragma once
// Bearer-token check of the admin API (RFC 6750 `Authorization: Bearer <token>`).
#include <string>
#include <string_view>

namespace pgshift::proxy {

enum class AdminAuth { ok, missing, invalid, not_configured };

// `expected` null or empty: no token configured, so nothing is authorized. The comparison
// takes the same time wherever the first differing byte is (CRYPTO_memcmp after a length
// check; the length itself is not secret), so the token cannot be guessed byte by byte.
AdminAuth check_bearer(std::string_view authorization_header, const std::string* expected);

}  // namespace pgshift::proxy
