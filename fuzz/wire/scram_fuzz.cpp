// Fuzzes the SCRAM state machines and the pg_authid secret parser. Input: up to four parts
// separated by NUL bytes: client-first, client-final (to a ScramServer), then server-first,
// server-final (to a ScramClient). Both sides use the RFC 7677 secret and nonces, so seeds
// built from the RFC exchange reach the success paths. The client runs in key (passthrough)
// mode, so an attacker-chosen iteration count never makes it run PBKDF2.
#include <openssl/crypto.h>

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "fuzz_check.hpp"
#include "wire/auth.hpp"
#include "wire/base64.hpp"
#include "wire/crypto.hpp"

using namespace pgshift::wire;

namespace {

const ScramSecret& rfc_secret() {
  static const ScramSecret s =
      make_scram_secret("pencil", *detail::base64_decode("W22ZaJ0SNY7soEsUEjb6gQ=="), 4096);
  return s;
}

std::vector<std::string_view> split_parts(std::string_view in) {
  std::vector<std::string_view> parts;
  while (parts.size() < 3) {
    const auto nul = in.find('\0');
    if (nul == std::string_view::npos) break;
    parts.push_back(in.substr(0, nul));
    in.remove_prefix(nul + 1);
  }
  parts.push_back(in);
  parts.resize(4);
  return parts;
}

void fuzz_server(std::string_view client_first, std::string_view client_final) {
  ScramServer server(rfc_secret(), "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0");
  std::string server_first, server_final;
  if (server.handle_client_first(client_first, server_first)) {
    FUZZ_CHECK(server_first.empty());
    FUZZ_CHECK(server.handle_client_final(client_final, server_final));  // stays failed
    return;
  }
  FUZZ_CHECK(server_first.starts_with("r="));
  if (server.handle_client_final(client_final, server_final)) {
    FUZZ_CHECK(server_final.empty() && !server.client_key());
    return;
  }
  // Success is only possible with the real ClientKey.
  FUZZ_CHECK(server.client_key());
  const auto stored = detail::sha256(*server.client_key());
  FUZZ_CHECK(CRYPTO_memcmp(stored.data(), rfc_secret().stored_key.data(), 32) == 0);
  FUZZ_CHECK(server_final.starts_with("v="));
}

void fuzz_client(std::string_view server_first, std::string_view server_final) {
  const ScramSecret& s = rfc_secret();
  ScramClient client(*s.client_key, s.server_key, "rOprNGfwEbeRWgbNEkqO");
  client.set_username("user");
  client.client_first();
  std::string client_final;
  if (client.handle_server_first(server_first, client_final)) {
    FUZZ_CHECK(client.handle_server_final(server_final));
    return;
  }
  FUZZ_CHECK(client_final.starts_with("c=biws,r=rOprNGfwEbeRWgbNEkqO"));
  (void)client.handle_server_final(server_final);
}

void fuzz_secret(std::string_view text) {
  const auto parsed = parse_scram_secret(text);
  if (!parsed) return;
  // Canonical text round-trips exactly; any accepted text re-parses to the same secret.
  const auto again = parse_scram_secret(format_scram_secret(*parsed));
  FUZZ_CHECK(again && again->iterations == parsed->iterations && again->salt == parsed->salt &&
             again->stored_key == parsed->stored_key && again->server_key == parsed->server_key);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const auto parts = split_parts(in);
  fuzz_server(parts[0], parts[1]);
  fuzz_client(parts[2], parts[3]);
  fuzz_secret(in);
  return 0;
}
