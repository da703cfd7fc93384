// pg_hba.conf subset: tokenizer as PostgreSQL 15's hba.c (whitespace separates fields, a
// comma continues a field's list, double quotes make a token literal), then one rule per
// line. Every message names the file and line and says what to write instead.
#include "config/hba.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

#include "config/files.hpp"

namespace pgshift::config {
namespace {

constexpr std::size_t kMaxHbaFile = 16 * 1024 * 1024;

struct Token {
  std::string text;
  bool quoted = false;
  bool is(std::string_view keyword) const { return !quoted && text == keyword; }
};
using Field = std::vector<Token>;  // a comma list

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

// Splits a line into fields. Returns "" or the reason the line cannot be read.
std::string tokenize(std::string_view line, std::vector<Field>& fields) {
  std::size_t pos = 0;
  for (;;) {
    while (pos < line.size() && is_space(line[pos])) ++pos;
    if (pos >= line.size() || line[pos] == '#') return "";
    Field field;
    for (;;) {
      Token token;
      bool in_quote = false;
      while (pos < line.size()) {
        char c = line[pos];
        if (!in_quote && (is_space(c) || c == ',' || c == '#')) break;
        ++pos;
        if (c == '"') {
          in_quote = !in_quote;
          token.quoted = true;
        } else {
          token.text += c;
        }
      }
      if (in_quote) return "unterminated quoted string";
      if (token.text.empty() && !token.quoted) return "empty item in a comma-separated list";
      field.push_back(std::move(token));
      if (pos < line.size() && line[pos] == ',') {
        ++pos;  // the list goes on, possibly after white space
        while (pos < line.size() && is_space(line[pos])) ++pos;
        continue;
      }
      break;
    }
    fields.push_back(std::move(field));
  }
}

std::optional<HbaConnType> conn_type(std::string_view s) {
  if (s == "host") return HbaConnType::host;
  if (s == "hostssl") return HbaConnType::hostssl;
  if (s == "hostnossl") return HbaConnType::hostnossl;
  if (s == "hostgssenc") return HbaConnType::hostgssenc;
  if (s == "hostnogssenc") return HbaConnType::hostnogssenc;
  return std::nullopt;
}

std::optional<HbaMethod> method(std::string_view s) {
  if (s == "trust") return HbaMethod::trust;
  if (s == "reject") return HbaMethod::reject;
  if (s == "md5") return HbaMethod::md5;
  if (s == "scram-sha-256") return HbaMethod::scram_sha_256;
  return std::nullopt;
}

// A database or user list. Returns "" or the reason.
std::string names(const Field& field, bool database, std::vector<HbaName>& out) {
  for (const Token& t : field) {
    if (!t.quoted && t.text.starts_with("@")) {
      return "'" + t.text + "': @file inclusion is not supported; list the names inline";
    }
    if (!t.quoted && t.text.starts_with("/")) {
      return "'" + t.text + "': regular expressions are not supported; list the names";
    }
    if (!database && !t.quoted && t.text.starts_with("+")) {
      return "'" + t.text +
             "': group membership (+role) is not supported (pgshift does not know the "
             "server's roles); list the users";
    }
    if (database && t.is("samerole")) {
      return "'samerole' is not supported (pgshift does not know the server's roles); list "
             "the databases";
    }
    if (database && t.is("samegroup")) return "'samegroup' is not supported; list the databases";
    bool keyword = t.is("all") || (database && (t.is("sameuser") || t.is("replication")));
    out.push_back(HbaName{t.text, keyword});
  }
  return "";
}

bool contiguous(const IpAddress& mask) {
  const std::size_t first = mask.v4 ? 12 : 0;
  bool zero_seen = false;
  for (std::size_t i = first; i < 16; ++i) {
    for (int bit = 7; bit >= 0; --bit) {
      bool one = (mask.bytes[i] >> bit) & 1;
      if (one && zero_seen) return false;
      if (!one) zero_seen = true;
    }
  }
  return true;
}

IpAddress prefix_mask(int bits, bool v4) {
  IpAddress m;
  m.v4 = v4;
  int offset = v4 ? 96 : 0;
  if (v4) std::fill(m.bytes.begin(), m.bytes.begin() + 12, 0xff);
  for (int i = 0; i < bits; ++i) {
    int b = offset + i;
    m.bytes[b / 8] |= static_cast<std::uint8_t>(0x80 >> (b % 8));
  }
  return m;
}

// The ADDRESS field, and the mask field after it when there is one (`used` says how many
// fields were taken). Returns "" or the reason.
std::string address(const std::vector<Field>& fields, std::size_t at, HbaRule& rule,
                    std::size_t& used) {
  used = 1;
  if (fields[at].size() != 1) return "multiple values in the address field";
  const Token& t = fields[at][0];
  if (t.is("all")) {
    rule.any_address = true;
    return "";
  }
  if (t.is("samehost") || t.is("samenet")) {
    return "'" + t.text + "' is not supported; write the addresses as CIDR (e.g. 127.0.0.1/32)";
  }
  std::string_view text = t.text;
  std::optional<int> bits;
  if (auto slash = text.find('/'); slash != std::string_view::npos) {
    std::string_view len = text.substr(slash + 1);
    int n = 0;
    if (len.empty() || len.size() > 3 ||
        !std::all_of(len.begin(), len.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return "invalid CIDR mask in address '" + t.text + "'";
    }
    for (char c : len) n = n * 10 + (c - '0');
    bits = n;
    text = text.substr(0, slash);
  }
  auto ip = IpAddress::parse(text);
  if (!ip) {
    return "'" + t.text +
           "' is not an IP address (host names are not supported); write e.g. 10.0.0.0/8 or "
           "::1/128";
  }
  rule.address = *ip;
  if (bits) {
    if (*bits > (ip->v4 ? 32 : 128)) return "invalid CIDR mask in address '" + t.text + "'";
    rule.mask = prefix_mask(*bits, ip->v4);
    return "";
  }
  // "address mask": the mask is the next field.
  const Field* mf = at + 1 < fields.size() ? &fields[at + 1] : nullptr;
  auto mask = mf && mf->size() == 1 ? IpAddress::parse((*mf)[0].text) : std::nullopt;
  if (!mask) {
    return "IP address '" + t.text + "' has no mask; write it as CIDR (e.g. " + t.text +
           (ip->v4 ? "/32" : "/128") + ") or follow it with a mask";
  }
  used = 2;
  if (mask->v4 != ip->v4 || !contiguous(*mask)) {
    return "invalid IP mask '" + (*mf)[0].text + "' after address '" + t.text + "'";
  }
  rule.mask = *mask;
  return "";
}

// One non-empty line into `rule`. Returns "" or the reason.
std::string parse_rule(const std::vector<Field>& fields, HbaRule& rule) {
  const Field& type = fields[0];
  if (type.size() != 1) return "multiple values in the connection type field";
  if (type[0].text == "local") {
    return "'local' rules are not supported: pgshift accepts TCP connections only; use host "
           "rules";
  }
  auto ct = conn_type(type[0].text);
  if (!ct) {
    return "invalid connection type '" + type[0].text +
           "' (use host, hostssl, hostnossl, hostgssenc or hostnogssenc)";
  }
  rule.type = *ct;
  if (fields.size() < 5) return "end-of-line before authentication method";
  if (auto why = names(fields[1], true, rule.databases); !why.empty()) return why;
  if (auto why = names(fields[2], false, rule.users); !why.empty()) return why;
  std::size_t used = 0;
  if (auto why = address(fields, 3, rule, used); !why.empty()) return why;
  const std::size_t at = 3 + used;
  if (at >= fields.size()) return "end-of-line before authentication method";
  if (fields[at].size() != 1) return "multiple values in the authentication method field";
  const std::string& m = fields[at][0].text;
  auto parsed = method(m);
  if (!parsed) {
    return "authentication method '" + m +
           "' is not supported (use trust, reject, md5 or scram-sha-256)";
  }
  rule.method = *parsed;
  if (at + 1 < fields.size()) {
    return "authentication options ('" + fields[at + 1][0].text + "') are not supported";
  }
  return "";
}

bool name_matches(const std::vector<HbaName>& list, std::string_view value, std::string_view user,
                  bool database, bool physical_replication) {
  for (const HbaName& n : list) {
    if (database && n.keyword) {
      if (n.name == "replication") {
        if (physical_replication) return true;
        continue;
      }
      if (physical_replication) continue;  // only `replication` matches those
      if (n.name == "all") return true;
      if (n.name == "sameuser" && value == user) return true;
      continue;
    }
    if (database && physical_replication) continue;
    if (n.keyword && n.name == "all") return true;
    if (n.name == value) return true;
  }
  return false;
}

bool address_matches(const HbaRule& rule, const IpAddress& a) {
  if (rule.any_address) return true;
  if (a.v4 != rule.address.v4) return false;
  for (std::size_t i = 0; i < 16; ++i) {
    if ((a.bytes[i] & rule.mask.bytes[i]) != (rule.address.bytes[i] & rule.mask.bytes[i])) {
      return false;
    }
  }
  return true;
}

bool type_matches(HbaConnType t, bool ssl) {
  switch (t) {
    case HbaConnType::host:
    case HbaConnType::hostnogssenc:
      return true;
    case HbaConnType::hostssl:
      return ssl;
    case HbaConnType::hostnossl:
      return !ssl;
    case HbaConnType::hostgssenc:
      return false;
  }
  return false;
}

}  // namespace

std::string_view to_string(HbaConnType t) {
  switch (t) {
    case HbaConnType::host:
      return "host";
    case HbaConnType::hostssl:
      return "hostssl";
    case HbaConnType::hostnossl:
      return "hostnossl";
    case HbaConnType::hostgssenc:
      return "hostgssenc";
    case HbaConnType::hostnogssenc:
      return "hostnogssenc";
  }
  return "?";
}

std::string_view to_string(HbaMethod m) {
  switch (m) {
    case HbaMethod::trust:
      return "trust";
    case HbaMethod::reject:
      return "reject";
    case HbaMethod::md5:
      return "md5";
    case HbaMethod::scram_sha_256:
      return "scram-sha-256";
  }
  return "?";
}

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
  if (text.empty() || text.size() >= INET6_ADDRSTRLEN) return std::nullopt;
  std::string s(text);
  IpAddress a;
  in_addr v4{};
  if (inet_pton(AF_INET, s.c_str(), &v4) == 1) {
    a.v4 = true;
    a.bytes[10] = a.bytes[11] = 0xff;
    std::memcpy(a.bytes.data() + 12, &v4, 4);
    return a;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, s.c_str(), &v6) != 1) return std::nullopt;
  std::memcpy(a.bytes.data(), &v6, 16);
  static constexpr std::uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  a.v4 = std::memcmp(a.bytes.data(), kMapped, 12) == 0;
  return a;
}

std::string IpAddress::to_string() const {
  char out[INET6_ADDRSTRLEN] = {};
  if (v4) {
    inet_ntop(AF_INET, bytes.data() + 12, out, sizeof out);
  } else {
    inet_ntop(AF_INET6, bytes.data(), out, sizeof out);
  }
  return out;
}

const HbaRule* HbaFile::match(const HbaRequest& r) const {
  for (const HbaRule& rule : rules) {
    if (!type_matches(rule.type, r.ssl)) continue;
    if (!address_matches(rule, r.address)) continue;
    if (!name_matches(rule.databases, r.database, r.user, true, r.physical_replication)) continue;
    if (!name_matches(rule.users, r.user, r.user, false, false)) continue;
    return &rule;
  }
  return nullptr;
}

bool HbaFile::needs_passwords() const {
  return std::any_of(rules.begin(), rules.end(), [](const HbaRule& r) {
    return r.method == HbaMethod::md5 || r.method == HbaMethod::scram_sha_256;
  });
}

HbaLoadResult parse_hba(std::string_view text, const std::string& source_name) {
  auto file = std::make_shared<HbaFile>();
  file->source = source_name;
  HbaLoadResult result;
  std::size_t start = 0;
  for (int number = 1; start < text.size(); ++number) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    start = end + 1;
    const std::string where = source_name + ":" + std::to_string(number) + ": ";
    std::vector<Field> fields;
    if (auto why = tokenize(line, fields); !why.empty()) {
      result.errors.push_back(where + why);
      continue;
    }
    if (fields.empty()) continue;
    HbaRule rule;
    rule.line = number;
    if (auto why = parse_rule(fields, rule); !why.empty()) {
      result.errors.push_back(where + why);
      continue;
    }
    file->rules.push_back(std::move(rule));
  }
  if (result.errors.empty() && file->rules.empty()) {
    result.errors.push_back(source_name +
                            ": no rules: every connection would be refused; add host lines");
  }
  if (result.errors.empty()) result.hba = std::move(file);
  return result;
}

HbaLoadResult load_hba_file(const std::string& path) {
  std::string error;
  auto text = read_text_file(path, kMaxHbaFile, error);
  if (!text) {
    HbaLoadResult result;
    result.errors.push_back(error);
    return result;
  }
  return parse_hba(*text, path);
}

}  // namespace pgshift::config
