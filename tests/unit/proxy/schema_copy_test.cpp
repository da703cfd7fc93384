// split_post_data: primary keys go before the initial copy (logical replication needs them
// on the subscriber to apply UPDATE/DELETE), everything else after it.
#include "proxy/migrate/schema_copy.hpp"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace pgshift::migrate
