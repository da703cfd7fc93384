// proxy/session/mirror_capture: which captured transactions the mirror's replay may join
// into one Query (MirrorTxn::joinable): separate simple Queries from a BEGIN to a COMMIT,
// nothing else controlling the block, no COPY, no error.
#include "proxy/session/mirror_capture.hpp"

#include <gtest/gtest.h>

#include "routing/classifier.hpp"
#include "wire/builder.hpp"

namespace pgshift::proxy {
namespace {

void raw_message(wire::Bytes& out, char type, const std::string& body) {
  out.push_back(static_cast<std::uint8_t>(type));
  const auto len = static_cast<std::uint32_t>(body.size() + 4);
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<std::uint8_t>(len >> s));
  out.insert(out.end(), body.begin(), body.end());
}

// Drives a capture as a session does: each statement sent as its own Query (classified as
// the relay classifies it), then answered with `tag` (or an error) and ReadyForQuery.
class Capture {
 public:
  void query(const std::string& sql, const std::string& tag, char status, bool changing = false) {
    const auto c = classifier_.classify(sql);
    if (c.kind == routing::StatementClass::write) capture_.mark_write();
    if (c.controls_transaction) capture_.mark_transaction_control();
    wire::query(capture_.buffer(), sql);
    capture_.message_sent('Q');
    if (tag.starts_with("ERROR ")) {
      capture_.on_error(tag.substr(6));
    } else {
      capture_.on_command_complete(tag);
    }
    capture_.on_ready_for_query(status, nullptr, changing);
  }
  std::vector<std::shared_ptr<MirrorTxn>> take() { return capture_.take(); }
  MirrorCapture& raw() { return capture_; }

 private:
  routing::Classifier classifier_;
  MirrorCapture capture_;
};

// One letter per transaction taken: y joinable, n not.
std::string joinable(const std::vector<std::shared_ptr<MirrorTxn>>& txns) {
  std::string out;
  for (const auto& t : txns) out += t->joinable ? 'y' : 'n';
  return out;
}

TEST(MirrorCaptureJoinable, ABeginToCommitOfSeparateQueriesIsJoinable) {
  Capture c;
  c.query("BEGIN", "BEGIN", 'T');
  c.query("UPDATE a SET x = 1", "UPDATE 1", 'T');
  c.query("SELECT x FROM a", "SELECT 1", 'T');
  c.query("END", "COMMIT", 'I');
  const auto txns = c.take();
  ASSERT_EQ(txns.size(), 1u);
  EXPECT_TRUE(txns[0]->joinable);
  EXPECT_EQ(txns[0]->answers, 4u);
}

TEST(MirrorCaptureJoinable, ExtendedRoundTripsAreJoinableButNotMixedWithQueries) {
  routing::Classifier classifier;
  auto extended = [&](MirrorCapture& cap, const std::string& sql, const std::string& tag,
                      char status) {
    const auto c = classifier.classify(sql);
    if (c.kind == routing::StatementClass::write) cap.mark_write();
    if (c.controls_transaction) cap.mark_transaction_control();
    wire::parse(cap.buffer(), "", sql, {});
    cap.message_sent('P');
    raw_message(cap.buffer(), 'B', std::string(2, '\0') + std::string(6, '\0'));  // "" "" 0 0 0
    cap.message_sent('B');
    raw_message(cap.buffer(), 'E', std::string(5, '\0'));  // "" and no row limit
    cap.message_sent('E');
    wire::sync(cap.buffer());
    cap.message_sent('S');
    cap.on_command_complete(tag);
    cap.on_ready_for_query(status, nullptr, false);
  };
  MirrorCapture cap;
  extended(cap, "BEGIN", "BEGIN", 'T');
  extended(cap, "UPDATE a SET x = 1", "UPDATE 1", 'T');
  extended(cap, "COMMIT", "COMMIT", 'I');
  EXPECT_EQ(joinable(cap.take()), "y");
  Capture mixed;
  mixed.query("BEGIN", "BEGIN", 'T');
  extended(mixed.raw(), "UPDATE a SET x = 1", "UPDATE 1", 'T');
  mixed.query("COMMIT", "COMMIT", 'I');
  EXPECT_EQ(joinable(mixed.take()), "n");
}

TEST(MirrorCaptureJoinable, SavepointsErrorsCopyAndAutocommitAreNot) {
  {
    Capture c;  // a savepoint in the middle: joined, it would fail in an implicit block
    c.query("BEGIN", "BEGIN", 'T');
    c.query("SAVEPOINT s", "SAVEPOINT", 'T');
    c.query("UPDATE a SET x = 1", "UPDATE 1", 'T');
    c.query("COMMIT", "COMMIT", 'I');
    EXPECT_EQ(joinable(c.take()), "n");
  }
  {
    Capture c;  // a SET: joined, the statements after it would be lexed before it ran
    c.query("BEGIN", "BEGIN", 'T');
    c.query("SET standard_conforming_strings = off", "SET", 'T', true);
    c.query("INSERT INTO a VALUES ('\\x')", "INSERT 0 1", 'T');
    c.query("COMMIT", "COMMIT", 'I');
    EXPECT_EQ(joinable(c.take()), "n");
  }
  {
    Capture c;  // an error it recovered from
    c.query("BEGIN", "BEGIN", 'T');
    c.query("SAVEPOINT s", "SAVEPOINT", 'T');
    c.query("INSERT INTO a VALUES (1)", "ERROR 23505", 'E');
    c.query("ROLLBACK TO s", "ROLLBACK", 'T');
    c.query("UPDATE a SET x = 1", "UPDATE 1", 'T');
    c.query("COMMIT", "COMMIT", 'I');
    EXPECT_EQ(joinable(c.take()), "n");
  }
  {
    Capture c;  // COPY data follows its Query
    c.query("BEGIN", "BEGIN", 'T');
    c.raw().mark_write();
    wire::query(c.raw().buffer(), "COPY a FROM STDIN");
    c.raw().message_sent('Q');
    const std::uint8_t done[] = {'c', 0, 0, 0, 4};
    c.raw().copy_piece(done);
    c.raw().on_command_complete("COPY 0");
    c.raw().on_ready_for_query('T', nullptr, false);
    c.query("COMMIT", "COMMIT", 'I');
    EXPECT_EQ(joinable(c.take()), "n");
  }
  {
    Capture c;  // autocommit statements, and a block whose COMMIT shares its Query
    c.query("UPDATE a SET x = 1", "UPDATE 1", 'I');
    c.query("BEGIN", "BEGIN", 'T');
    c.query("UPDATE a SET x = 2; COMMIT", "UPDATE 1", 'I');
    EXPECT_EQ(joinable(c.take()), "nn");
  }
}

}  // namespace
}  // namespace pgshift::proxy
