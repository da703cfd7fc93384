#include "server_pool_fixture.hpp"

namespace pgshift::pool::test {

namespace {
using namespace std::chrono_literals;

const auto* const servers_env = pt::SharedEnvironment<Servers>::install();
}  // namespace

Servers::Servers() {
  main.create_role(kUser, kPassword);
  flaky.create_role(kUser, kPassword);
}

Servers& servers() {
  return pt::SharedEnvironment<Servers>::get();
}

ServerPoolOptions fast_options() {
  ServerPoolOptions o;
  o.maintenance_interval = 100ms;
  o.backoff_initial = 50ms;
  o.backoff_max = 400ms;
  o.check_timeout = 5s;
  o.close_timeout = 2s;
  return o;
}

config::Pool settings(int size, std::chrono::milliseconds wait) {
  config::Pool p;
  p.mode = config::PoolMode::transaction;
  p.size = size;
  p.query_wait_timeout = wait;
  return p;
}

std::shared_ptr<const UpstreamParams> params_for(const pt::PgCluster& cluster,
                                                 const std::string& application_name,
                                                 const std::string& password) {
  auto p = std::make_shared<UpstreamParams>();
  p->host = "127.0.0.1";
  p->port = cluster.port();
  p->database = "postgres";
  p->credentials.user = kUser;
  p->credentials.password = password;
  p->connect_timeout = 3s;
  p->startup_params = {{"application_name", application_name}};
  return p;
}

int backends(const pt::PgCluster& cluster, const std::string& application_name) {
  return std::stoi(cluster
                       .exec("SELECT count(*) FROM pg_stat_activity WHERE application_name = '" +
                             application_name + "'")
                       .scalar());
}

bool backend_exists(const pt::PgCluster& cluster, int pid) {
  return cluster.exec("SELECT count(*) FROM pg_stat_activity WHERE pid = " + std::to_string(pid))
             .scalar() == "1";
}

PoolKey key_for(const std::string& route) {
  return {.route = route, .side = UpstreamSide::source, .database = "postgres", .user = kUser};
}

Harness::Harness(int n, ServerPoolOptions options) {
  for (int i = 0; i < n; ++i) {
    threads_.push_back(std::make_unique<IoThread>());
    sets_.push_back(PoolSet::create(threads_.back()->executor(), registry_, options));
  }
}

Harness::~Harness() {
  for (std::size_t i = 0; i < sets_.size(); ++i) {
    threads_[i]->call([&, i] {
      sets_[i]->close();
      return 0;
    });
  }
  EXPECT_TRUE(pt::wait_until(
      [&] {
        for (const auto& s : registry_->stats()) {
          if (s.total != 0 || s.closing != 0) return false;
        }
        return true;
      },
      10s, "every pooled connection closed"));
  for (std::size_t i = 0; i < sets_.size(); ++i) {
    threads_[i]->call([&, i] {
      sets_[i].reset();
      return 0;
    });
  }
}

}  // namespace pgshift::pool::test
