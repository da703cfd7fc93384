#include "proxy/ctl/ctl.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "proxy/api/endpoints.hpp"
#include "proxy/ctl/cutover_cmd.hpp"
#include "proxy/ctl/format.hpp"
#include "proxy/ctl/http.hpp"

namespace pgshift::proxy {
namespace {

namespace json = boost::json;
namespace http = boost::beast::http;

constexpr const char* kUsage =
    "usage: pgshift ctl [options] <command>\n"
    "\n"
    "commands:\n"
    "  routes                          list routes: phase, read percent, epoch, target health\n"
    "  status                          the fleet per route: phase, read %, epoch, members at\n"
    "                                  that epoch / live members\n"
    "  members                         sidecars of the fleet: epochs applied, heartbeat age\n"
    "  route NAME                      show one route\n"
    "  set-read-percent NAME PERCENT   send PERCENT (0..100, two decimals) of reads to the target\n"
    "  pause [--timeout-ms N]          hold new transactions (default 30000 ms, max 300000)\n"
    "  resume                          release held transactions\n"
    "  health                          readiness and the health of every upstream\n"
    "  pools                           server pools: connections, waiting clients, counters\n"
    "  cutover NAME [--dry-run] [--max-lag-ms N] [--drain-timeout-ms N] [--skip-verify]\n"
    "                                  move the route's writes to the target (docs/cutover.md)\n"
    "  rollback NAME [same options]    move them back to the source, losing nothing\n"
    "  finalize NAME                   stop the reverse stream; the route becomes target_only\n"
    "  recover NAME                    end a cutover or rollback whose coordinator died\n"
    "\n"
    "options:\n"
    "  --url URL          admin API (default $PGSHIFT_ADMIN_URL or http://127.0.0.1:9187)\n"
    "  --token-file FILE  bearer token file (default: $PGSHIFT_ADMIN_TOKEN)\n"
    "  --json             print the API's JSON instead of tables\n"
    "  --request-timeout-ms N  per-request timeout (default 10000)\n";

constexpr int kOk = 0;
constexpr int kApiError = 1;
constexpr int kUsageError = 2;

struct Options {
  std::string url;
  std::string token_file;
  bool json = false;
  std::optional<long> pause_timeout_ms;
  bool dry_run = false, skip_verify = false;  // cutover, rollback, finalize
  std::optional<long> max_lag_ms, drain_timeout_ms;
  long request_timeout_ms = 10000;
  std::vector<std::string> args;  // command and its operands
};

struct Usage {
  std::string message;
};

std::optional<long> parse_long(const std::string& s) {
  if (s.empty() || s.size() > 12 || s.find_first_not_of("0123456789") != std::string::npos) {
    return std::nullopt;
  }
  return std::stol(s);
}

// Options may come before or after the command; `--name value` and `--name=value`.
Options parse_args(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    std::optional<std::string> inline_value;
    if (a.starts_with("--") && a.find('=') != std::string::npos) {
      inline_value = a.substr(a.find('=') + 1);
      a = a.substr(0, a.find('='));
    }
    auto value = [&]() -> std::string {
      if (inline_value) return *inline_value;
      if (i + 1 >= argc) throw Usage{a + " needs a value"};
      return argv[++i];
    };
    if (a == "--url") {
      o.url = value();
    } else if (a == "--token-file") {
      o.token_file = value();
    } else if (a == "--json") {
      o.json = true;
    } else if (a == "--timeout-ms" || a == "--request-timeout-ms") {
      const std::string v = value();
      auto n = parse_long(v);
      if (!n) throw Usage{a + " must be a whole number of milliseconds (got \"" + v + "\")"};
      if (a == "--timeout-ms")
        o.pause_timeout_ms = *n;
      else
        o.request_timeout_ms = *n;
    } else if (a == "--dry-run") {
      o.dry_run = true;
    } else if (a == "--skip-verify") {
      o.skip_verify = true;
    } else if (a == "--max-lag-ms" || a == "--drain-timeout-ms") {
      const std::string v = value();
      auto n = parse_long(v);
      if (!n) throw Usage{a + " must be a whole number of milliseconds (got \"" + v + "\")"};
      (a == "--max-lag-ms" ? o.max_lag_ms : o.drain_timeout_ms) = *n;
    } else if (a == "--help" || a == "-h") {
      throw Usage{};
    } else if (a.starts_with("--")) {
      throw Usage{"unknown option " + a};
    } else {
      o.args.push_back(a);
    }
  }
  return o;
}

std::string read_token(const Options& o) {
  std::string token;
  if (!o.token_file.empty()) {
    std::ifstream in(o.token_file);
    if (!in) throw Usage{"cannot read --token-file " + o.token_file};
    std::stringstream ss;
    ss << in.rdbuf();
    token = ss.str();
  } else if (const char* env = std::getenv("PGSHIFT_ADMIN_TOKEN")) {
    token = env;
  }
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) {
    token.pop_back();
  }
  return token;
}

class Client {
 public:
  Client(CtlUrl url, std::string token, std::chrono::milliseconds timeout, std::ostream& err)
      : url_(std::move(url)), token_(std::move(token)), timeout_(timeout), err_(err) {}

  // One request to endpoint `e` (its method and path from the shared table; `name` fills
  // its {name}).
  CtlHttpResult request(api::Endpoint e, std::string_view name, const std::string& body) {
    return ctl_http_request(url_, api::spec(e).method, api::path(e, name), token_, body, timeout_);
  }

  // The parsed JSON body of a 2xx answer; otherwise prints the error and returns nullopt.
  // `raw` receives the body either way (for --json).
  std::optional<json::value> call(api::Endpoint e, std::string_view name, const std::string& body,
                                  std::string* raw = nullptr) {
    auto r = request(e, name, body);
    if (raw) *raw = r.body;
    boost::system::error_code ec;
    json::value v = r.transport_error.empty() ? json::parse(r.body, ec) : json::value();
    if (r.transport_error.empty() && r.status >= 200 && r.status < 300 && !ec) return v;
    report_error(r);
    return std::nullopt;
  }

  // Prints what went wrong: the API's {"error": ...} message when there is one.
  void report_error(const CtlHttpResult& r) {
    if (!r.transport_error.empty()) {
      err_ << "error: " << r.transport_error << "\n";
      return;
    }
    boost::system::error_code ec;
    const json::value v = json::parse(r.body, ec);
    std::string message = "HTTP " + std::to_string(r.status);
    if (!ec && v.is_object() && v.get_object().contains("error")) {
      message =
          text_of(v.get_object().if_contains("error")) + " (HTTP " + std::to_string(r.status) + ")";
    } else if (r.status >= 200 && r.status < 300) {
      message = "the admin API answered with something that is not JSON";
    }
    err_ << "error: " << message << "\n";
    if (r.status == 401 && token_.empty()) {
      err_ << "hint: pass --token-file FILE or set PGSHIFT_ADMIN_TOKEN\n";
    }
  }

 private:
  CtlUrl url_;
  std::string token_;
  std::chrono::milliseconds timeout_;
  std::ostream& err_;
};

void need_operands(const Options& o, std::size_t n, const char* what) {
  if (o.args.size() != n + 1) throw Usage{o.args[0] + ": expected " + what};
}

void print_read_percent(std::ostream& out, const json::value& v) {
  const auto& obj = v.as_object();
  const bool changed =
      obj.contains("changed") && obj.at("changed").is_bool() && obj.at("changed").get_bool();
  out << text_of(obj.if_contains("name")) << ": read percent " << (changed ? "set to " : "already ")
      << format_percent(obj.if_contains("read_percent")) << " % (epoch "
      << text_of(obj.if_contains("epoch")) << (changed ? ")" : ", unchanged)") << "\n";
}

void print_resume(std::ostream& out, const json::value& v) {
  const auto& obj = v.as_object();
  const auto* was = obj.if_contains("was_paused");
  if (was && was->is_bool() && was->get_bool()) {
    out << "resumed: released " << text_of(obj.if_contains("released")) << " held transaction(s)\n";
  } else {
    out << "not paused; nothing to resume\n";
  }
}

using Printer = void (*)(std::ostream&, const json::value&);

// Most commands: one call, its answer printed by `print` (or as the API's JSON with --json).
int call_and_print(const Options& o, Client& client, std::ostream& out, api::Endpoint e,
                   std::string_view name, const std::string& body, Printer print) {
  std::string raw;
  auto v = client.call(e, name, body, &raw);
  if (!v) return kApiError;
  if (o.json) {
    out << raw << (raw.ends_with('\n') ? "" : "\n");
  } else {
    print(out, *v);
  }
  return kOk;
}

int set_read_percent(const Options& o, Client& client, std::ostream& out) {
  need_operands(o, 2, "NAME PERCENT");
  // Sent as written (a JSON number), so the server's validation and message apply.
  boost::system::error_code ec;
  const auto n = json::parse(o.args[2], ec);
  if (ec || !n.is_number())
    throw Usage{"PERCENT must be a number such as 12.5 (got \"" + o.args[2] + "\")"};
  return call_and_print(o, client, out, api::Endpoint::put_read_percent, o.args[1],
                        "{\"percent\": " + o.args[2] + "}", print_read_percent);
}

int health(const Options& o, Client& client, std::ostream& out) {
  need_operands(o, 0, "no operands");
  // /readyz answers 503 with a JSON body when not ready: show it, then exit 1.
  const auto r = client.request(api::Endpoint::readyz, {}, {});
  boost::system::error_code ec;
  const auto readyz = r.transport_error.empty() ? json::parse(r.body, ec) : json::value();
  if (!r.transport_error.empty() || (r.status != 200 && r.status != 503) || ec) {
    client.report_error(r);
    return kApiError;
  }
  if (o.json) {
    out << r.body << (r.body.ends_with('\n') ? "" : "\n");
  } else {
    auto routes = client.call(api::Endpoint::list_routes, {}, {});
    print_health(out, readyz, routes ? *routes : json::value());
  }
  return r.status == 200 ? kOk : kApiError;
}

int run(const Options& o, Client& client, std::ostream& out) {
  const std::string& cmd = o.args[0];
  auto simple = [&](api::Endpoint e, Printer print) {
    need_operands(o, 0, "no operands");
    return call_and_print(o, client, out, e, {}, {}, print);
  };
  if (cmd == "routes") return simple(api::Endpoint::list_routes, print_routes);
  if (cmd == "status") return simple(api::Endpoint::list_routes, print_status);
  if (cmd == "members") return simple(api::Endpoint::list_members, print_members);
  if (cmd == "pools") return simple(api::Endpoint::list_pools, print_pools);
  if (cmd == "resume") return simple(api::Endpoint::resume, print_resume);
  if (cmd == "route") {
    need_operands(o, 1, "NAME");
    return call_and_print(o, client, out, api::Endpoint::get_route, o.args[1], {}, print_route);
  }
  if (cmd == "pause") {
    need_operands(o, 0, "no operands besides --timeout-ms N");
    std::string body;
    if (o.pause_timeout_ms) body = "{\"timeout_ms\": " + std::to_string(*o.pause_timeout_ms) + "}";
    return call_and_print(o, client, out, api::Endpoint::pause, {}, body, print_pause);
  }
  if (cmd == "set-read-percent") return set_read_percent(o, client, out);
  if (cmd == "health") return health(o, client, out);
  throw Usage{"unknown command \"" + cmd + "\""};
}

}  // namespace

int ctl_main(int argc, char** argv, std::ostream& out, std::ostream& err) {
  try {
    Options o = parse_args(argc, argv);
    if (o.args.empty()) throw Usage{"missing command"};
    if (o.url.empty()) {
      const char* env = std::getenv("PGSHIFT_ADMIN_URL");
      o.url = env && *env ? env : "http://127.0.0.1:9187";
    }
    std::string error;
    auto url = parse_ctl_url(o.url, error);
    if (!url) throw Usage{error};
    const auto& cmd = o.args[0];
    if (cmd == "cutover" || cmd == "rollback" || cmd == "finalize" || cmd == "recover") {
      if (o.args.size() != 2) throw Usage{cmd + ": expected NAME"};
      CtlOperation op{cmd,          o.args[1],          o.dry_run, o.skip_verify,
                      o.max_lag_ms, o.drain_timeout_ms, o.json};
      return ctl_operation(*url, read_token(o), std::chrono::milliseconds(o.request_timeout_ms), op,
                           out, err);
    }
    Client client(*url, read_token(o), std::chrono::milliseconds(o.request_timeout_ms), err);
    return run(o, client, out);
  } catch (const Usage& u) {
    if (u.message.empty()) {
      out << kUsage;
      return kOk;
    }
    err << "pgshift ctl: " << u.message << "\n\n" << kUsage;
    return kUsageError;
  }
}

int ctl_main(int argc, char** argv) {
  return ctl_main(argc, argv, std::cout, std::cerr);
}

}  // namespace pgshift::proxy
