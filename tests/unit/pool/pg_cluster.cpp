#include "pg_cluster.hpp"

namespace pgshift::pool::test {

using pgshift::test::AuthMethod;
using pgshift::test::PgClusterOptions;

PgCluster::PgCluster() {
  PgClusterOptions options;
  options.name = "upstream";
  options.tls = ca_.server();
  cluster_ = std::make_unique<pgshift::test::PgCluster>(std::move(options));
  cluster_->create_role(scram_user, scram_password, AuthMethod::scram_sha_256);
  cluster_->create_role(md5_user, md5_password, AuthMethod::md5);
  cluster_->create_role(clear_user, clear_password, AuthMethod::password);
}

}  // namespace pgshift::pool::test
