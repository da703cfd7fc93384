#include "proxy/ctl/cutover_cmd.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <cstdio>
#include <iomanip>
#include <thread>

#include "proxy/api/endpoints.hpp"
#include "proxy/ctl/format.hpp"

namespace pgshift::proxy {
namespace {

namespace json = boost::json;
namespace http = boost::beast::http;

constexpr auto kPollEvery = std::chrono::milliseconds(50);
constexpr auto kGiveUpAfter = std::chrono::minutes(10);

std::string body_of(const CtlOperation& op) {
  json::object o;
  if (op.dry_run) o["dry_run"] = true;
  if (op.skip_verify) o["skip_verify"] = true;
  if (op.max_lag_ms) o["max_lag_ms"] = *op.max_lag_ms;
  if (op.drain_timeout_ms) o["drain_timeout_ms"] = *op.drain_timeout_ms;
  return o.empty() ? std::string() : json::serialize(o);
}

std::string error_text(const CtlHttpResult& r) {
  if (!r.transport_error.empty()) return r.transport_error;
  boost::system::error_code ec;
  const auto v = json::parse(r.body, ec);
  if (!ec && v.is_object() && v.as_object().contains("error")) {
    return text_of(v.as_object().if_contains("error")) + " (HTTP " + std::to_string(r.status) + ")";
  }
  return "HTTP " + std::to_string(r.status);
}

void print_step(std::ostream& out, const json::value& step) {
  const auto& s = step.as_object();
  out << "  " << std::left << std::setw(24) << text_of(s.if_contains("name")) << std::setw(9)
      << text_of(s.if_contains("status")) << std::right << std::setw(7)
      << text_of(s.if_contains("duration_ms")) << " ms  " << text_of(s.if_contains("detail"))
      << std::endl;  // flushed: the steps are printed live
}

}  // namespace

int ctl_operation(const CtlUrl& url, const std::string& token,
                  std::chrono::milliseconds request_timeout, const CtlOperation& op,
                  std::ostream& out, std::ostream& err) {
  const api::Endpoint start = op.kind == "rollback"       ? api::Endpoint::rollback
                              : op.kind == "finalize"     ? api::Endpoint::finalize
                              : op.kind == "recover"      ? api::Endpoint::recover
                              : op.kind == "mirror-start" ? api::Endpoint::mirror_start
                              : op.kind == "mirror-stop"  ? api::Endpoint::mirror_stop
                                                          : api::Endpoint::cutover;
  const auto& progress = api::spec(api::Endpoint::get_operation);
  auto r = ctl_http_request(url, api::spec(start).method, api::path(start, op.route), token,
                            body_of(op), request_timeout);
  if (!r.transport_error.empty() || r.status != 202) {
    err << "error: " << error_text(r) << "\n";
    return 1;
  }
  if (!op.json) {
    out << op.kind << " of route " << op.route << (op.dry_run ? " (dry run)" : "") << ":"
        << std::endl;
  }
  std::size_t printed = 0;
  const auto give_up = std::chrono::steady_clock::now() + kGiveUpAfter;
  for (;;) {
    auto g = ctl_http_request(url, progress.method, api::path(progress.endpoint, op.route), token,
                              {}, request_timeout);
    boost::system::error_code ec;
    const auto v =
        g.transport_error.empty() && g.status == 200 ? json::parse(g.body, ec) : json::value();
    if (!v.is_object()) {
      err << "error: reading the operation's progress: " << error_text(g) << "\n";
      return 1;
    }
    const auto& o = v.as_object();
    if (const auto* steps = o.if_contains("steps"); steps && steps->is_array() && !op.json) {
      for (; printed < steps->as_array().size(); ++printed) {
        print_step(out, steps->as_array()[printed]);
      }
    }
    const std::string state = text_of(o.if_contains("state"));
    if (state != "running") {
      if (op.json) {
        out << g.body << (g.body.ends_with('\n') ? "" : "\n");
      } else {
        out << text_of(o.if_contains("summary")) << std::endl;
      }
      return state == "completed" || state == "dry_run" ? 0 : 1;
    }
    if (std::chrono::steady_clock::now() > give_up) {
      err << "error: the operation is still running after 10 minutes; follow it with "
             "GET "
          << api::path(progress.endpoint, op.route) << "\n";
      return 1;
    }
    std::this_thread::sleep_for(kPollEvery);
  }
}

}  // namespace pgshift::proxy
