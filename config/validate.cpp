// Semantic checks of a Config: what the key table alone cannot say (required files, TLS
// settings, duplicates, cross-key rules), plus the table's own required/range/choice rules
// so that a Config built in code is held to the same standard as one loaded from YAML.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <optional>
#include <utility>

#include "config/files.hpp"
#include "config/hba.hpp"
#include "config/keys.hpp"
#include "config/load.hpp"
#include "config/users.hpp"

namespace pgshift::config {
namespace {

constexpr std::size_t kMaxTokenFile = 64 * 1024;

std::string quote(std::string_view s) {
  return "'" + std::string(s) + "'";
}

bool under(std::string_view path, std::string_view prefix) {
  if (path.substr(0, prefix.size()) != prefix) return false;
  return path.size() == prefix.size() || path[prefix.size()] == '.' || path[prefix.size()] == '[';
}

bool valid_route_name(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char ch) {
    auto c = static_cast<unsigned char>(ch);
    return std::isalnum(c) || c == '_' || c == '-' || c == '.';
  });
}

bool is_wildcard_host(std::string_view h) {
  return h == "0.0.0.0" || h == "::" || h == "*";
}

class Validator {
 public:
  explicit Validator(const SourceLines& lines) : lines_(lines) {}

  std::vector<ConfigError> run(const Config& c) {
    routes(c);
    table_rules(c);
    listen(c);
    admin(c);
    client_auth(c);
    control(c);
    return std::move(errors_);
  }

 private:
  void add(const std::string& path, std::string message) {
    for (const auto& b : blocked_) {
      if (under(path, b)) return;
    }
    errors_.push_back(ConfigError{path, line_of(lines_, path), std::move(message)});
  }
  // Reports `path` and drops later errors below it (they would only repeat this one).
  void add_blocking(const std::string& path, std::string message) {
    add(path, std::move(message));
    blocked_.push_back(path);
  }
  bool written(const std::string& path) const { return lines_.find(path) != lines_.end(); }

  void readable(const std::string& path, const std::string& file) {
    if (auto why = unreadable_reason(file)) add(path, *why);
  }

  // Required, range and choice rules declared in the key table.
  void table_rules(const Config& c) {
    Config copy = c;  // for_each_key hands out field addresses; never write the caller's
    for_each_key(
        copy, [this](const KeyInfo& key, const std::string& path, FieldPtr field, const Scope&) {
          const std::string text = display(field, key);
          if (key.required && text.empty()) {
            add(path, written(path) ? "must not be empty" : "is required");
            return;
          }
          if (auto n = numeric(field); n && key.type != KeyType::string) {
            // Written as !(in range) so that a NaN is out of range too.
            if (!(*n >= static_cast<double>(key.min) && *n <= static_cast<double>(key.max))) {
              add(path, "must be between " + std::to_string(key.min) + " and " +
                            std::to_string(key.max) + ", got " + quote(text));
            }
          }
          if (key.type == KeyType::enumeration && !text.empty()) {
            auto choices = key.choices();
            if (std::find(choices.begin(), choices.end(), text) == choices.end()) {
              std::string list;
              for (auto ch : choices) list += (list.empty() ? "" : ", ") + std::string(ch);
              add(path, "must be one of: " + list + ", got " + quote(text));
            }
          }
        });
  }

  void listen(const Config& c) {
    const auto& tls = c.listen.tls;
    if (tls.mode == ClientTlsMode::disable) return;
    const std::string why = " when tls.mode is " + quote(to_string(tls.mode));
    for (auto [key, file] :
         {std::pair{"cert_file", &tls.cert_file}, std::pair{"key_file", &tls.key_file}}) {
      std::string path = std::string("listen.tls.") + key;
      if (file->empty()) {
        add(path, "is required" + why);
      } else {
        readable(path, *file);
      }
    }
  }

  void admin(const Config& c) {
    if (!c.admin.enabled) return;
    if (c.admin.token_file.empty()) {
      add("admin.token_file", "is required when the admin API is enabled");
    } else {
      std::string error;
      auto token = read_text_file(c.admin.token_file, kMaxTokenFile, error);
      if (!token) {
        add("admin.token_file", error);
      } else if (std::all_of(token->begin(), token->end(), [](char ch) {
                   return std::isspace(static_cast<unsigned char>(ch));
                 })) {
        add("admin.token_file", "token file " + quote(c.admin.token_file) + " is empty");
      }
    }
    const auto& a = c.admin;
    const auto& l = c.listen;
    if (a.port == l.port &&
        (a.host == l.host || is_wildcard_host(a.host) || is_wildcard_host(l.host))) {
      add("admin.port", "conflicts with listen.port (" + std::to_string(l.port) + ")");
    }
  }

  void client_auth(const Config& c) {
    const auto& ca = c.client_auth;
    // With an hba_file, its rules decide whether passwords are asked (method is not used).
    bool needs_users = ca.method != ClientAuthMethod::trust;
    if (!ca.hba_file.empty()) {
      auto hba = load_hba_file(ca.hba_file);
      for (const auto& e : hba.errors) add("client_auth.hba_file", e);
      needs_users = hba.hba && hba.hba->needs_passwords();
    }
    if (ca.users_file.empty()) {
      if (needs_users) {
        add("client_auth.users_file",
            ca.hba_file.empty() ? "is required when method is " + quote(to_string(ca.method))
                                : "is required: " + quote(ca.hba_file) +
                                      " has md5 or scram-sha-256 rules");
      }
      return;
    }
    for (const auto& e : load_users_file(ca.users_file).errors) add("client_auth.users_file", e);
  }

  // The control database must be reachable with fixed credentials and a named database:
  // the control thread logs in by itself, with no client to borrow them from.
  void control(const Config& c) {
    const auto& ctl = c.control;
    if (!ctl.database.host.empty()) {
      if (ctl.mode != ControlMode::automatic) {
        add("control", "is both " + quote(to_string(ctl.mode)) + " and a mapping with a host");
      }
      if (ctl.database.database.empty()) add("control.database", "is required with control.host");
      if (ctl.database.user.empty()) add("control.user", "is required with control.host");
      const auto& tls = ctl.database.tls;
      if ((tls.mode == UpstreamTlsMode::verify_ca || tls.mode == UpstreamTlsMode::verify_full) &&
          tls.ca_file.empty()) {
        add("control.tls.ca_file", "is required when tls.mode is " + quote(to_string(tls.mode)));
      }
      return;
    }
    if (ctl.mode != ControlMode::target || c.routes.empty()) return;
    const Route* r = first_target_route(c);
    if (!r) {
      add("control",
          "'target' needs a route with a target (or use 'file', or give control "
          "a host, database and user)");
      return;
    }
    const std::string where = "routes[" + std::to_string(r - c.routes.data()) + "].target";
    if (r->target->passthrough || r->target->user.empty()) {
      add("control", "'target' uses " + where +
                         ", which has no fixed user (credentials: passthrough); set its user and "
                         "password, or give control its own host, database and user");
    }
    if (r->target->database.empty()) {
      add("control", "'target' uses " + where +
                         ", which has no database (it follows the client's); set " + where +
                         ".database, or give control its own host, database and user");
    }
  }

  void routes(const Config& c) {
    if (c.routes.empty()) {
      add("routes", "at least one route is required");
      return;
    }
    std::map<std::string, std::string, std::less<>> names;  // name -> path of first use
    std::map<std::pair<std::string, std::optional<std::string>>, std::string> served;
    for (std::size_t i = 0; i < c.routes.size(); ++i) {
      const Route& r = c.routes[i];
      const std::string path = "routes[" + std::to_string(i) + "]";
      route(c, r, path);
      if (!r.name.empty()) {
        if (!valid_route_name(r.name)) {
          add(path + ".name",
              "must contain only letters, digits, '_', '-' and '.', got " + quote(r.name));
        }
        auto [it, fresh] = names.emplace(r.name, path);
        if (!fresh)
          add(path + ".name", "duplicate route name " + quote(r.name) + first(it->second));
      }
      if (!r.client_database.empty()) {
        std::pair key{r.client_database, r.client_user};
        auto [it, fresh] = served.emplace(key, path);
        if (!fresh) {
          std::string who = r.client_user ? "user " + quote(*r.client_user) : "all users";
          add(path + ".client_database", "database " + quote(r.client_database) + " for " + who +
                                             " is already routed" + first(it->second));
        }
      }
    }
  }

  std::string first(const std::string& path) const {
    int line = line_of(lines_, path);
    return " (by " + path + (line > 0 ? ", line " + std::to_string(line) : "") + ")";
  }

  void route(const Config& c, const Route& r, const std::string& path) {
    if (r.client_database != "*" && r.client_database.find('*') != std::string::npos) {
      add(path + ".client_database", "a wildcard must be the whole name: \"*\"");
    }
    // A source that was never written (rather than written without a host) is one error,
    // not one per key inside it.
    if (r.source.host.empty() && written(path) && !written(path + ".source")) {
      add_blocking(path + ".source", "is required");
    }
    upstream(c, r.source, path + ".source");
    if (r.target) upstream(c, *r.target, path + ".target");
    if (r.pool.min_idle > r.pool.size) {
      add(path + ".pool.min_idle",
          "must not exceed pool.size (" + std::to_string(r.pool.size) + ")");
    }
    double percent = r.read_split.initial_read_percent;
    if (std::abs(percent * 100 - std::round(percent * 100)) > 1e-6) {
      add(path + ".read_split.initial_read_percent", "at most two decimal places are allowed");
    }
    if (!r.target) {
      if (r.sync.mode != SyncMode::none) {
        add(path + ".sync.mode", quote(to_string(r.sync.mode)) + " needs a target");
      }
      if (percent > 0) add(path + ".read_split.initial_read_percent", "needs a target");
    } else if (r.sync.mode == SyncMode::mirror && (r.source.passthrough || r.target->passthrough)) {
      add(path + ".sync.mode",
          "mirror replays writes on its own connections: give source and target a fixed user "
          "and password, not 'credentials: passthrough'");
    } else if (r.target->host == r.source.host && r.target->port == r.source.port &&
               r.target->database == r.source.database && !r.source.host.empty()) {
      add(path + ".target", "is the same server and database as source");
    }
  }

  void upstream(const Config& c, const Upstream& u, const std::string& path) {
    if (u.passthrough) {
      if (!u.user.empty()) add(path + ".user", "must be absent with 'credentials: passthrough'");
      if (!u.password.empty()) {
        add(path + ".password", "must be absent with 'credentials: passthrough'");
      }
      if (c.client_auth.users_file.empty()) {
        add(path + ".credentials",
            "passthrough needs client_auth.users_file (it holds the passwords)");
      }
    } else if (u.user.empty()) {
      add(path + ".user", "is required (or set 'credentials: passthrough')");
    }
    const auto& tls = u.tls;
    if (tls.mode == UpstreamTlsMode::verify_ca || tls.mode == UpstreamTlsMode::verify_full) {
      if (tls.ca_file.empty()) {
        add(path + ".tls.ca_file", "is required when tls.mode is " + quote(to_string(tls.mode)));
      }
    }
    if (!tls.ca_file.empty() && tls.mode != UpstreamTlsMode::disable) {
      readable(path + ".tls.ca_file", tls.ca_file);
    }
  }

  const SourceLines& lines_;
  std::vector<ConfigError> errors_;
  std::vector<std::string> blocked_;
};

}  // namespace

std::vector<ConfigError> validate(const Config& c, const SourceLines& lines) {
  return Validator(lines).run(c);
}

std::vector<ConfigError> validate(const Config& c) {
  return validate(c, SourceLines{});
}

}  // namespace pgshift::config
