#include "proxy/runtime/runtime.hpp"

#include <fstream>
#include <sstream>

#include "pool/upstream.hpp"

namespace pgshift::proxy {
namespace {

std::shared_ptr<asio::ssl::context> make_client_tls(const config::ClientTls& tls,
                                                    std::vector<std::string>& errors) {
  if (tls.mode == config::ClientTlsMode::disable) return nullptr;
  auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                   asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                   asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use);
  boost::system::error_code ec;
  ctx->use_certificate_chain_file(tls.cert_file, ec);
  if (ec) {
    errors.push_back("listen.tls.cert_file: cannot load " + tls.cert_file + ": " + ec.message());
    return nullptr;
  }
  ctx->use_private_key_file(tls.key_file, asio::ssl::context::pem, ec);
  if (ec) {
    errors.push_back("listen.tls.key_file: cannot load " + tls.key_file + ": " + ec.message());
    return nullptr;
  }
  return ctx;
}

std::shared_ptr<asio::ssl::context> make_upstream_tls(const config::UpstreamTls& tls,
                                                      const std::string& where,
                                                      std::vector<std::string>& errors) {
  if (tls.mode == config::UpstreamTlsMode::disable) return nullptr;
  try {
    return pool::make_upstream_tls_context(tls);
  } catch (const std::exception& e) {
    errors.push_back(where + ".tls: " + e.what());
    return nullptr;
  }
}

}  // namespace

SnapshotPtr build_snapshot(config::ConfigPtr config, std::vector<std::string>& errors,
                           const Snapshot* previous) {
  auto snap = std::make_shared<Snapshot>();
  snap->config = config;
  const auto& ca = config->client_auth;
  bool needs_users = ca.method != config::ClientAuthMethod::trust;
  if (!ca.hba_file.empty()) {
    auto hba = config::load_hba_file(ca.hba_file);
    for (auto& e : hba.errors) errors.push_back("client_auth.hba_file: " + e);
    snap->hba = hba.hba;
    needs_users = hba.hba && hba.hba->needs_passwords();
  }
  if (needs_users || !ca.users_file.empty()) {
    auto users = config::load_users_file(ca.users_file);
    for (auto& e : users.errors) errors.push_back("client_auth.users_file: " + e);
    snap->users = users.users;
  }
  snap->client_tls = make_client_tls(config->listen.tls, errors);
  for (std::size_t i = 0; i < config->routes.size(); ++i) {
    const auto& r = config->routes[i];
    RouteRuntime rr;
    rr.route = &r;
    std::string where = "routes[" + std::to_string(i) + "]";
    rr.source_tls = make_upstream_tls(r.source.tls, where + ".source", errors);
    if (r.target) rr.target_tls = make_upstream_tls(r.target->tls, where + ".target", errors);
    rr.classifier = std::make_shared<const routing::Classifier>(routing::Classifier::from_route(r));
    const auto window = r.read_split.read_your_writes_window.count();
    // Logical sync and the mirror both publish how far the target has caught up
    // (routing/sync_position.hpp): the lag monitor's marker, the mirror's replay.
    const bool logical = r.sync.mode != config::SyncMode::none && r.target.has_value();
    if (previous) {
      for (const auto& old : previous->routes) {
        if (old.route->name != r.name) continue;
        if (logical && old.sync) rr.sync = old.sync;
        // The read-your-writes state is kept while its oracle stays the same kind (and, for
        // the window oracle, the same window).
        const bool old_logical = old.sync != nullptr;
        if (old.ryw && old_logical == logical &&
            (logical || old.route->read_split.read_your_writes_window ==
                            r.read_split.read_your_writes_window)) {
          rr.ryw = old.ryw;
        }
        // The sessions already in keep their slots; a lower limit only refuses new ones.
        rr.client_slots = old.client_slots;
      }
    }
    if (!rr.client_slots) rr.client_slots = std::make_shared<ClientSlots>();
    if (logical && !rr.sync) {
      rr.sync = std::make_shared<routing::SyncPosition>(r.read_split.max_lag_ms.count());
    }
    if (rr.sync) rr.sync->set_max_lag_ms(r.read_split.max_lag_ms.count());
    if (!rr.ryw) {
      // Logical sync: a write is caught up once the target applied a later lag marker;
      // otherwise the fixed window.
      std::shared_ptr<const routing::CatchUpOracle> oracle;
      if (rr.sync) {
        oracle = std::make_shared<const routing::MarkerOracle>(rr.sync);
      } else {
        oracle = std::make_shared<const routing::WindowOracle>(window);
      }
      rr.ryw = std::make_shared<routing::ReadYourWrites>(std::move(oracle));
    }
    snap->routes.push_back(std::move(rr));
  }
  if (config->admin.enabled && !config->admin.token_file.empty()) {
    std::ifstream in(config->admin.token_file);
    std::stringstream ss;
    ss << in.rdbuf();
    std::string token = ss.str();
    while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
    if (!in || token.empty()) {
      errors.push_back("admin.token_file: cannot read a token from " + config->admin.token_file);
    }
    snap->admin_token = std::make_shared<const std::string>(std::move(token));
  }
  if (!errors.empty()) return nullptr;
  return snap;
}

std::vector<std::string> unsupported_setting_warnings(const config::Config& config) {
  (void)config;  // every setting is honoured in this build (sync.mode mirror since issue 12)
  return {};
}

}  // namespace pgshift::proxy
