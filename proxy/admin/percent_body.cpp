#include "proxy/admin/percent_body.hpp"

#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <vector>

namespace pgshift::proxy {
namespace {

namespace json = boost::json;

std::string number_text(const json::value& v) {
  return json::serialize(v);
}

// What json::parse does not tell: the members in the order written (it keeps one of two
// duplicate keys) and a number's exact text (it rounds 99.999999999999999999 to 100 and
// flushes 1e-400 to 0). Only the top-level members of an object are recorded.
struct MemberTextHandler {
  static constexpr std::size_t max_array_size = std::size_t(-1);
  static constexpr std::size_t max_object_size = std::size_t(-1);
  static constexpr std::size_t max_string_size = std::size_t(-1);
  static constexpr std::size_t max_key_size = std::size_t(-1);
  std::vector<std::string> keys;         // top-level member names, decoded
  std::vector<std::string> number_text;  // per key: the number's text, "" if not a number
  int depth = 0;
  std::string part;

  bool on_document_begin(json::error_code&) { return true; }
  bool on_document_end(json::error_code&) { return true; }
  bool on_array_begin(json::error_code&) { return ++depth, true; }
  bool on_array_end(std::size_t, json::error_code&) { return --depth, true; }
  bool on_object_begin(json::error_code&) { return ++depth, true; }
  bool on_object_end(std::size_t, json::error_code&) { return --depth, true; }
  bool on_string_part(json::string_view, std::size_t, json::error_code&) { return true; }
  bool on_string(json::string_view, std::size_t, json::error_code&) { return true; }
  bool on_key_part(json::string_view s, std::size_t, json::error_code&) {
    part.append(s.data(), s.size());
    return true;
  }
  bool on_key(json::string_view s, std::size_t, json::error_code&) {
    part.append(s.data(), s.size());
    if (depth == 1) {
      keys.push_back(std::move(part));
      number_text.emplace_back();
    }
    part.clear();
    return true;
  }
  bool on_number_part(json::string_view s, json::error_code&) {
    part.append(s.data(), s.size());
    return true;
  }
  bool number(json::string_view s) {
    part.append(s.data(), s.size());
    if (depth == 1 && !number_text.empty()) number_text.back() = part;
    part.clear();
    return true;
  }
  bool on_int64(std::int64_t, json::string_view s, json::error_code&) { return number(s); }
  bool on_uint64(std::uint64_t, json::string_view s, json::error_code&) { return number(s); }
  bool on_double(double, json::string_view s, json::error_code&) { return number(s); }
  bool on_bool(bool, json::error_code&) { return true; }
  bool on_null(json::error_code&) { return true; }
  bool on_comment_part(json::string_view, json::error_code&) { return true; }
  bool on_comment(json::string_view, json::error_code&) { return true; }
};

// A JSON number's text (already valid JSON) as basis points, exactly: the decimal value
// must lie in 0..100 and have at most two decimals, whatever its spelling ("12.50",
// "1.25e1", "0e-400"). nullopt otherwise (more decimals, out of range, huge exponents).
}  // namespace

std::optional<std::uint32_t> exact_basis_points(std::string_view text) {
  bool negative = false;
  if (!text.empty() && text.front() == '-') {
    negative = true;
    text.remove_prefix(1);
  }
  std::string digits;  // integer and fraction digits, without the point
  long scale = 0;      // value = digits * 10^-scale
  std::size_t i = 0;
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) digits += text[i];
  if (i < text.size() && text[i] == '.') {
    for (++i; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i, ++scale) digits += text[i];
  }
  if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
    ++i;
    bool negative_exponent = false;
    if (i < text.size() && (text[i] == '+' || text[i] == '-')) negative_exponent = text[i++] == '-';
    long exponent = 0;
    if (i == text.size()) return std::nullopt;  // "1e": no exponent digits
    for (; i < text.size(); ++i) {
      // Not a digit: not a number (found by fuzz_admin_request: the sum overflowed).
      if (text[i] < '0' || text[i] > '9') return std::nullopt;
      exponent = exponent * 10 + (text[i] - '0');
      if (exponent > 100'000) return std::nullopt;  // far outside 0.01..100 either way
    }
    scale += negative_exponent ? exponent : -exponent;
  }
  // Normalise: no leading zeros, no trailing zeros (each one removed lowers the scale).
  const auto first = digits.find_first_not_of('0');
  if (first == std::string::npos) return 0;  // zero, whatever its sign or exponent
  digits.erase(0, first);
  while (digits.back() == '0') {
    digits.pop_back();
    --scale;
  }
  if (negative || scale > 2) return std::nullopt;
  // digits * 10^(2 - scale) basis points, at most 10,000 (five digits).
  if (static_cast<long>(digits.size()) + (2 - scale) > 5) return std::nullopt;
  std::uint32_t bp = 0;
  for (char c : digits) bp = bp * 10 + static_cast<std::uint32_t>(c - '0');
  for (long k = 0; k < 2 - scale; ++k) bp *= 10;
  if (bp > 10'000) return std::nullopt;
  return bp;
}

namespace {

constexpr std::string_view kShape =
    R"(expected a JSON object like {"percent": 12.5} or {"percent": 12.5, "epoch": 3})";

// Top-level members: only "percent" and "epoch", each at most once.
bool check_members(const MemberTextHandler& members, std::string& error) {
  bool seen_percent = false, seen_epoch = false;
  for (const auto& key : members.keys) {
    bool& seen = key == "percent" ? seen_percent : seen_epoch;
    if (key != "percent" && key != "epoch") {
      error = "unknown member \"" + key + "\"; " + std::string(kShape);
      return false;
    }
    if (seen) {
      error = "duplicate member \"" + key + "\"; " + std::string(kShape);
      return false;
    }
    seen = true;
  }
  return true;
}

bool read_epoch(const json::object& o, std::optional<std::uint64_t>& epoch, std::string& error) {
  const json::value* e = o.if_contains("epoch");
  if (e == nullptr) return true;
  if ((!e->is_int64() && !e->is_uint64()) || (e->is_int64() && e->as_int64() < 0)) {
    error = "\"epoch\" must be a non-negative integer (got " + number_text(*e) + ")";
    return false;
  }
  epoch = e->to_number<std::uint64_t>();
  return true;
}

std::string percent_text(const MemberTextHandler& members) {
  for (std::size_t k = 0; k < members.keys.size(); ++k) {
    if (members.keys[k] == "percent") return members.number_text[k];
  }
  return {};
}

}  // namespace

std::optional<routing::ReadPercent> parse_percent_body(std::string_view body, std::string& error,
                                                       std::optional<std::uint64_t>& epoch) {
  if (body.empty()) {
    error = "request body is empty; " + std::string(kShape);
    return std::nullopt;
  }
  json::basic_parser<MemberTextHandler> parser{json::parse_options{}};
  boost::system::error_code ec;
  parser.write_some(false, body.data(), body.size(), ec);
  json::value v;
  if (!ec) v = json::parse(json::string_view(body.data(), body.size()), ec);
  if (ec) {
    error = "request body is not valid JSON (" + ec.message() + "); " + std::string(kShape);
    return std::nullopt;
  }
  if (!v.is_object()) {
    error = "request body must be a JSON object; " + std::string(kShape);
    return std::nullopt;
  }
  const MemberTextHandler& members = parser.handler();
  if (!check_members(members, error) || !read_epoch(v.get_object(), epoch, error)) {
    return std::nullopt;
  }
  const json::value* p = v.get_object().if_contains("percent");
  if (p == nullptr) {
    error = "missing \"percent\"; " + std::string(kShape);
    return std::nullopt;
  }
  if (!p->is_number()) {
    error = "\"percent\" must be a number (got " + number_text(*p) + ")";
    return std::nullopt;
  }
  const std::string text = percent_text(members);
  const auto bp = exact_basis_points(text);
  if (!bp) {
    const double d = p->to_number<double>();
    error =
        d >= 0.0 && d <= 100.0 && text.find_first_of("eE") == std::string::npos
            ? "\"percent\" must have at most two decimals (got " + text + ")"
            : "\"percent\" must be between 0 and 100 with at most two decimals (got " + text + ")";
    return std::nullopt;
  }
  return routing::ReadPercent::from_basis_points(*bp);
}

}  // namespace pgshift::proxy
