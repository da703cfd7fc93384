// proxy/migrate without a database: split_post_data (primary keys go before the initial
// copy, since logical replication needs them on the subscriber to apply UPDATE/DELETE;
// everything else after it) and sync_sides (names, conninfo, usage errors).
#include <gtest/gtest.h>

#include "proxy/migrate/schema_copy.hpp"
#include "proxy/migrate/sync_common.hpp"

namespace pgshift::migrate {
namespace {

constexpr const char* kPostData = R"(--
-- PostgreSQL database dump
--
SET statement_timeout = 0;
SET client_encoding = 'UTF8';

--
-- Name: accounts accounts_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.accounts
    ADD CONSTRAINT accounts_pkey PRIMARY KEY (aid);


--
-- Name: accounts_bid_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX accounts_bid_idx ON public.accounts USING btree (bid);


--
-- Name: accounts accounts_bid_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.accounts
    ADD CONSTRAINT accounts_bid_fkey FOREIGN KEY (bid) REFERENCES public.branches(bid);

--
-- PostgreSQL database dump complete
--
)";

TEST(SchemaCopy, PrimaryKeysAreSplitFromTheRestOfPostData) {
  std::string pks, rest;
  split_post_data(kPostData, pks, rest);
  EXPECT_NE(pks.find("SET statement_timeout = 0;"), std::string::npos);
  EXPECT_NE(rest.find("SET statement_timeout = 0;"), std::string::npos);
  EXPECT_NE(pks.find("accounts_pkey PRIMARY KEY (aid);"), std::string::npos) << pks;
  EXPECT_EQ(pks.find("accounts_bid_idx"), std::string::npos) << pks;
  EXPECT_EQ(pks.find("FOREIGN KEY"), std::string::npos) << pks;
  EXPECT_EQ(rest.find("PRIMARY KEY"), std::string::npos) << rest;
  EXPECT_NE(rest.find("CREATE INDEX accounts_bid_idx"), std::string::npos) << rest;
  EXPECT_NE(rest.find("FOREIGN KEY (bid)"), std::string::npos) << rest;
}

config::Config one_route() {
  config::Config c;
  auto& r = c.routes.emplace_back();
  r.name = "Shop-EU";
  r.client_database = "shop";
  r.source.host = "db.internal";
  r.source.port = 5433;
  r.source.user = "svc";
  r.target.emplace();
  r.target->host = "rds.example";
  r.target->user = "master";
  r.target->database = "shop2";
  return c;
}

std::string usage_error(const config::Config& c, const std::string& route) {
  try {
    sync_sides(c, route);
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

TEST(SyncSides, NamesDatabasesAndThePublisherAddress) {
  auto c = one_route();
  auto s = sync_sides(c, "Shop-EU");
  EXPECT_EQ(s.publication, "pgshift_shop_eu");
  EXPECT_EQ(s.subscription, "pgshift_shop_eu");
  EXPECT_EQ(s.source.dbname, "shop");  // source.database empty: the client database
  EXPECT_EQ(s.target.dbname, "shop2");
  EXPECT_EQ(s.publisher.host, "db.internal");
  EXPECT_EQ(s.publisher.port, 5433);
  c.routes[0].sync.publisher_host = "source";
  c.routes[0].sync.publisher_port = 5432;
  s = sync_sides(c, "Shop-EU");
  EXPECT_EQ(s.publisher.host, "source");
  EXPECT_EQ(s.publisher.port, 5432);
  EXPECT_EQ(s.source.host, "db.internal");  // pgshift itself still uses source.host
  c.routes[0].source.tls.mode = config::UpstreamTlsMode::verify_full;
  c.routes[0].source.tls.ca_file = "/etc/pgshift/ca.pem";
  s = sync_sides(c, "Shop-EU");
  EXPECT_EQ(s.source.sslmode, "verify-full");
  EXPECT_EQ(s.publisher.sslmode, "require");  // the target server has no copy of the CA file
  EXPECT_EQ(s.publisher.sslrootcert, "");
}

TEST(SyncSides, UsageErrorsNameTheFix) {
  auto c = one_route();
  EXPECT_NE(usage_error(c, "nope").find("no route named 'nope'"), std::string::npos);
  c.routes[0].source.passthrough = true;
  c.routes[0].source.user.clear();
  EXPECT_NE(usage_error(c, "Shop-EU").find("source uses passthrough credentials"),
            std::string::npos);
  c = one_route();
  c.routes[0].client_database = "*";
  EXPECT_NE(usage_error(c, "Shop-EU").find("set source.database"), std::string::npos);
  c = one_route();
  c.routes[0].target.reset();
  EXPECT_NE(usage_error(c, "Shop-EU").find("has no target"), std::string::npos);
}

}  // namespace
}  // namespace pgshift::migrate
