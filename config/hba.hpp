#pragma once
// Client authentication rules in pg_hba.conf syntax (client_auth.hba_file), the subset
// pgshift can honour (docs/tls-and-auth.md):
//
//   TYPE         DATABASE            USER              ADDRESS              METHOD
//   host         all                 monitor           127.0.0.1/32         trust
//   hostssl      app,"App Db"        app_rw,app_ro     10.0.0.0/8           scram-sha-256
//   hostnossl    all                 all               0.0.0.0 0.0.0.0      reject
//
// TYPE: host, hostssl, hostnossl, hostgssenc (never matches: pgshift has no GSSAPI
// encryption), hostnogssenc (as host). `local` is an error: pgshift has no Unix socket.
// DATABASE: comma list of names, `all`, `sameuser`, `replication` (physical replication
// connections only, which `all` does not match, as in PostgreSQL). USER: comma list of names
// or `all`. `+group`, `samerole`, `@file` and regular expressions (`/...`) are errors:
// pgshift does not know the server's role memberships. Quoted names ("all") are names, not
// keywords. ADDRESS: `all`, IPv4 or IPv6 CIDR (`10.0.0.0/8`, `::1/128`), or an address
// followed by a mask column (`10.0.0.0 255.0.0.0`); host names, `samehost` and `samenet`
// are errors. METHOD: trust, reject, md5, scram-sha-256; options after it are errors.
// Lines are read in order and the first match wins; no match is a refusal. `#` starts a
// comment. IPv4-mapped IPv6 client addresses (::ffff:a.b.c.d) match as IPv4.
//
// Pure: parse_hba() does no I/O; load_hba_file() reads the file once (config load and
// reload). An HbaFile is immutable and shared between threads.
#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pgshift::config {

enum class HbaConnType { host, hostssl, hostnossl, hostgssenc, hostnogssenc };
enum class HbaMethod { trust, reject, md5, scram_sha_256 };

std::string_view to_string(HbaConnType t);
std::string_view to_string(HbaMethod m);

// An IPv4 address is stored IPv4-mapped (::ffff:a.b.c.d) so that one comparison serves both.
struct IpAddress {
  std::array<std::uint8_t, 16> bytes{};
  bool v4 = false;
  // Parses "127.0.0.1", "::1", "::ffff:10.1.2.3" (the last becomes IPv4). No names.
  static std::optional<IpAddress> parse(std::string_view text);
  std::string to_string() const;
};

struct HbaName {
  std::string name;
  bool keyword = false;  // an unquoted all / sameuser / replication
};

struct HbaRule {
  int line = 0;
  HbaConnType type = HbaConnType::host;
  std::vector<HbaName> databases, users;
  bool any_address = false;  // ADDRESS all
  IpAddress address, mask;   // both IPv4 or both IPv6 unless any_address
  HbaMethod method = HbaMethod::reject;
};

// What a rule is matched against.
struct HbaRequest {
  std::string_view user, database;
  IpAddress address;
  bool ssl = false;
  bool physical_replication = false;  // startup parameter replication=true/on/yes/1
};

struct HbaFile {
  std::string source;  // the file name, for messages
  std::vector<HbaRule> rules;
  // The first rule that matches, or null (the connection is refused).
  const HbaRule* match(const HbaRequest& request) const;
  // Whether any rule asks for a password (then client_auth.users_file is required).
  bool needs_passwords() const;
};

struct HbaLoadResult {
  std::shared_ptr<const HbaFile> hba;  // null if there were errors
  std::vector<std::string> errors;     // "pg_hba.conf:3: unknown method 'peer' ..."
};
HbaLoadResult parse_hba(std::string_view text, const std::string& source_name);
HbaLoadResult load_hba_file(const std::string& path);

}  // namespace pgshift::config
