#pragma once
// The client side of PostgreSQL authentication, without I/O: turns each Authentication
// request of the server into the reply to send (cleartext, MD5, SCRAM-SHA-256). Pure, so it
// can be tested with canned server messages.
// https://www.postgresql.org/docs/15/sasl-authentication.html Not thread-safe; one per connection
// attempt.
#include <optional>
#include <string>

#include "pool/upstream.hpp"
#include "wire/auth.hpp"
#include "wire/builder.hpp"
#include "wire/messages.hpp"

namespace pgshift::pool {

class UpstreamAuth {
 public:
  enum class Step {
    reply,   // send `reply`, then wait for the next request
    wait,    // nothing to send (SASL final verified); wait for AuthenticationOk
    done,    // AuthenticationOk
    failed,  // `error` is filled (ec + message without the endpoint; never a secret)
  };

  // `credentials` must outlive this object. `scram_nonce` is injectable for tests.
  explicit UpstreamAuth(const Credentials& credentials,
                        std::string scram_nonce = wire::random_nonce());

  Step on_request(const wire::Authentication& request, wire::Bytes& reply, ConnectError& error);

 private:
  enum class Scram { none, sent_first, sent_final, verified };

  Step on_sasl(const wire::Authentication& request, wire::Bytes& reply, ConnectError& error);
  // The plaintext password, or nullptr (and error filled) when there is none.
  const std::string* plaintext(const char* method, ConnectError& error) const;

  const Credentials& credentials_;
  std::string scram_nonce_;
  std::optional<wire::ScramClient> scram_;
  Scram scram_state_ = Scram::none;
};

}  // namespace pgshift::pool
