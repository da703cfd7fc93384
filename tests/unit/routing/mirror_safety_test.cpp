#include "routing/mirror_safety.hpp"

#include <gtest/gtest.h>

#include <string>

namespace pgshift::routing {
namespace {

using R = MirrorUnsafeReason;

std::string reasons(std::string_view sql, const MirrorSchema* schema = nullptr,
                    LexerOptions options = {}) {
  return classify_mirror_safety(sql, schema, options).reasons.to_string();
}

TEST(MirrorSafety, ReasonNamesAreStable) {
  // Metric label values: renaming one breaks dashboards.
  EXPECT_EQ(to_string(R::volatile_function), "volatile_function");
  EXPECT_EQ(to_string(R::random), "random");
  EXPECT_EQ(to_string(R::sequence), "sequence");
  EXPECT_EQ(to_string(R::serial_default), "serial_default");
  EXPECT_EQ(to_string(R::identity_default), "identity_default");
  EXPECT_EQ(to_string(R::volatile_default), "volatile_default");
  EXPECT_EQ(to_string(R::trigger), "trigger");
  for (R r : all_mirror_unsafe_reasons()) {
    EXPECT_EQ(mirror_unsafe_reason_from_string(to_string(r)), r);
  }
  EXPECT_EQ(mirror_unsafe_reason_from_string("now"), std::nullopt);
}

TEST(MirrorSafety, SetOperations) {
  MirrorUnsafeSet s;
  EXPECT_TRUE(s.empty());
  EXPECT_EQ(s.to_string(), "");
  s.add(R::trigger);
  s.add(R::random);
  MirrorUnsafeSet t;
  t.add(R::random);
  t.add(R::sequence);
  s.add(t);
  EXPECT_EQ(s.size(), 3u);
  EXPECT_EQ(s.to_string(), "random,sequence,trigger");
  EXPECT_TRUE(s.contains(R::sequence));
  EXPECT_FALSE(s.contains(R::volatile_function));
}

TEST(MirrorSafety, PlainWritesAreSafe) {
  EXPECT_EQ(reasons("INSERT INTO t (a, b) VALUES ($1, 'x')"), "");
  EXPECT_EQ(reasons("UPDATE t SET a = a + 1 WHERE id = 3"), "");
  EXPECT_EQ(reasons("DELETE FROM t WHERE id = 3; COMMIT"), "");
  EXPECT_EQ(reasons("SELECT now FROM t"), "");  // a column named now, not a call
  EXPECT_EQ(reasons(""), "");
  EXPECT_TRUE(classify_mirror_safety("UPDATE t SET a = 1").safe());
}

TEST(MirrorSafety, TimeFunctions) {
  for (const char* sql : {
           "INSERT INTO t VALUES (now())",
           "UPDATE t SET at = NOW() WHERE id = 1",
           "UPDATE t SET at = pg_catalog.now()",
           "INSERT INTO t VALUES (clock_timestamp())",
           "INSERT INTO t VALUES (statement_timestamp())",
           "INSERT INTO t VALUES (transaction_timestamp())",
           "INSERT INTO t VALUES (timeofday())",
           "INSERT INTO t VALUES (current_timestamp)",
           "INSERT INTO t VALUES (CURRENT_TIMESTAMP(3))",
           "INSERT INTO t VALUES (current_date)",
           "INSERT INTO t VALUES (current_time)",
           "INSERT INTO t VALUES (localtime)",
           "INSERT INTO t VALUES (localtimestamp)",
           "INSERT INTO t VALUES (txid_current())",
           "INSERT INTO t VALUES (\"now\"())",
           "INSERT INTO t VALUES ('now'::timestamptz)",
           "INSERT INTO t VALUES (timestamp 'today')",
           "INSERT INTO t VALUES (CAST(' tomorrow ' AS date))",
       }) {
    EXPECT_EQ(reasons(sql), "volatile_function") << sql;
  }
}

TEST(MirrorSafety, RandomFunctions) {
  for (const char* sql : {
           "INSERT INTO t VALUES (random())",
           "INSERT INTO t VALUES (gen_random_uuid())",
           "INSERT INTO t VALUES (public.uuid_generate_v4())",
           "INSERT INTO t VALUES (uuid_generate_v1mc())",
           "INSERT INTO t VALUES (ext.gen_random_bytes(16))",
       }) {
    EXPECT_EQ(reasons(sql), "random") << sql;
  }
  // Name-based UUIDs are deterministic.
  EXPECT_EQ(reasons("INSERT INTO t VALUES (uuid_generate_v5(uuid_ns_url(), 'x'))"), "");
}

TEST(MirrorSafety, SequenceFunctions) {
  for (const char* sql : {
           "INSERT INTO t VALUES (nextval('t_id_seq'))",
           "SELECT setval('s', 10)",
           "INSERT INTO t VALUES (currval('s'))",
           "INSERT INTO t VALUES (lastval())",
       }) {
    EXPECT_EQ(reasons(sql), "sequence") << sql;
  }
}

TEST(MirrorSafety, SeveralReasonsAndDetails) {
  const auto r = classify_mirror_safety(
      "INSERT INTO t VALUES (nextval('s'), now(), random()); UPDATE u SET x = now()");
  EXPECT_EQ(r.reasons.to_string(), "volatile_function,random,sequence");
  ASSERT_EQ(r.details.size(), 3u);  // one per reason, the first occurrence
  EXPECT_EQ(r.details[0], std::make_pair(R::sequence, std::string("nextval()")));
  EXPECT_EQ(r.details[1], std::make_pair(R::volatile_function, std::string("now()")));
  EXPECT_EQ(r.details[2], std::make_pair(R::random, std::string("random()")));
}

TEST(MirrorSafety, CommentsLiteralsAndIdentifiersDoNotTrigger) {
  for (const char* sql : {
           "INSERT INTO t VALUES ('now()') -- random()",
           "INSERT INTO t VALUES (E'nextval(\\'s\\')') /* clock_timestamp() */",
           "INSERT INTO t VALUES ($$ now() $$, $f$ random() $f$)",
           "INSERT INTO t (\"current_timestamp\", \"now\") VALUES (1, 2)",
           "INSERT INTO t VALUES ('now')",        // a plain text value
           "INSERT INTO t VALUES ('now'::text)",  // cast to text: stays the word
           "UPDATE t SET note = 'current_date' WHERE t.id = 1",
           "INSERT INTO t VALUES (myschema.now(), s.random())",  // user functions
           "SELECT t.current_date FROM t",
           "/* nested /* now() */ still comment */ INSERT INTO t VALUES (1)",
       }) {
    EXPECT_EQ(reasons(sql), "") << sql;
  }
}

TEST(MirrorSafety, BackslashStringsFollowTheServerSetting) {
  // With standard_conforming_strings=off, \' escapes the quote: now() is inside the string.
  const char* sql = "INSERT INTO t VALUES ('a\\' now() ')";
  EXPECT_EQ(reasons(sql, nullptr, LexerOptions{false}), "");
  // With it on, the backslash is literal: the string ends at \' and now() is code.
  EXPECT_EQ(reasons(sql, nullptr, LexerOptions{true}), "volatile_function");
}

MirrorSchema shop_schema() {
  MirrorSchema s;
  MirrorTableRisks orders;
  orders.defaults = {{"id", R::serial_default}, {"created", R::volatile_default}};
  orders.user_triggers = true;
  s.add_table("public", "orders", orders);
  MirrorTableRisks items;
  items.defaults = {{"Id", R::identity_default}};
  s.add_table("shop", "items", items);
  s.add_table("public", "plain", {});
  return s;
}

TEST(MirrorSafety, SchemaDefaultsOfLeftOutColumns) {
  const MirrorSchema s = shop_schema();
  EXPECT_EQ(reasons("INSERT INTO orders (note) VALUES ('x')", &s),
            "serial_default,volatile_default,trigger");
  EXPECT_EQ(reasons("INSERT INTO orders (id, created, note) VALUES (1, $1, 'x')", &s), "trigger");
  EXPECT_EQ(reasons("INSERT INTO orders (id, note) VALUES (1, 'x')", &s),
            "volatile_default,trigger");
  EXPECT_EQ(reasons("INSERT INTO public.orders VALUES (1, $1, 'x')", &s),
            "serial_default,volatile_default,trigger");  // no column list: unknown, flagged
  EXPECT_EQ(reasons("INSERT INTO orders (id, created) VALUES (DEFAULT, $1)", &s),
            "serial_default,volatile_default,trigger");
  EXPECT_EQ(reasons("INSERT INTO orders DEFAULT VALUES", &s),
            "serial_default,volatile_default,trigger");
  // Quoted column names keep their case; unquoted ones fold.
  EXPECT_EQ(reasons("INSERT INTO shop.items (\"Id\", n) VALUES (1, 2)", &s), "");
  EXPECT_EQ(reasons("INSERT INTO shop.items (id, n) VALUES (1, 2)", &s), "identity_default");
  EXPECT_EQ(reasons("INSERT INTO items (n) VALUES (2)", &s), "");  // public.items: unknown
  EXPECT_EQ(reasons("INSERT INTO plain VALUES (1)", &s), "");
}

TEST(MirrorSafety, SchemaOtherWrites) {
  const MirrorSchema s = shop_schema();
  EXPECT_EQ(reasons("UPDATE orders SET note = 'y' WHERE id = 1", &s), "trigger");
  EXPECT_EQ(reasons("UPDATE ONLY orders SET created = DEFAULT", &s),
            "serial_default,volatile_default,trigger");
  EXPECT_EQ(reasons("DELETE FROM orders WHERE id = 1", &s), "trigger");
  EXPECT_EQ(reasons("TRUNCATE plain, orders", &s), "trigger");
  EXPECT_EQ(reasons("COPY orders FROM STDIN", &s), "trigger");  // every column given
  EXPECT_EQ(reasons("COPY shop.items (n) FROM STDIN", &s), "identity_default");
  EXPECT_EQ(reasons("COPY orders TO STDOUT", &s), "");
  EXPECT_EQ(reasons("MERGE INTO shop.items i USING src ON false WHEN NOT MATCHED THEN "
                    "INSERT (n) VALUES (1)",
                    &s),
            "identity_default");
  EXPECT_EQ(reasons("WITH x AS (DELETE FROM orders RETURNING *) SELECT count(*) FROM x", &s),
            "trigger");
  EXPECT_EQ(reasons("WITH x AS (SELECT 1) INSERT INTO shop.items (n) SELECT 1 FROM x", &s),
            "identity_default");
  EXPECT_EQ(reasons("BEGIN; UPDATE plain SET a = 1; DELETE FROM orders; COMMIT", &s), "trigger");
}

TEST(MirrorSafety, SchemaReadsAndLookalikesAreNotWrites) {
  const MirrorSchema s = shop_schema();
  EXPECT_EQ(reasons("SELECT * FROM orders FOR UPDATE", &s), "");
  EXPECT_EQ(reasons("SELECT * FROM orders FOR NO KEY UPDATE", &s), "");
  EXPECT_EQ(reasons("INSERT INTO plain VALUES (1) ON CONFLICT (a) DO UPDATE SET a = 2", &s), "");
  EXPECT_EQ(reasons("GRANT UPDATE (note) ON orders TO app", &s), "");
  EXPECT_EQ(reasons("EXPLAIN DELETE FROM orders", &s), "");  // not executed
  EXPECT_EQ(reasons("EXPLAIN ANALYZE DELETE FROM orders", &s), "trigger");
  EXPECT_EQ(reasons("SELECT 'DELETE FROM orders' -- INSERT INTO orders", &s), "");
}

TEST(MirrorSafety, MalformedInputIsHandled) {
  const MirrorSchema s = shop_schema();
  for (const char* sql : {"INSERT INTO", "INSERT INTO orders (", "UPDATE", "DELETE FROM ONLY",
                          "TRUNCATE orders,", "COPY orders (id", "now(", "'now'::", "now() '",
                          "INSERT INTO a.b.c.d.e VALUES (1)", ";;;", "\"unterminated"}) {
    (void)classify_mirror_safety(sql, &s);  // must not crash or read out of bounds (ASan)
  }
  EXPECT_EQ(reasons("TRUNCATE orders,", &s), "trigger");
  EXPECT_EQ(reasons("now(", &s), "volatile_function");
}

}  // namespace
}  // namespace pgshift::routing
