// The mirror's spool (proxy/mirror/spool.hpp): records come back whole and in order, ack-sync
// completions stay attached, and a drained or cleared spool gives its disk space back.
#include "proxy/mirror/spool.hpp"

#include <gtest/gtest.h>

#include <filesystem>

namespace pgshift::mirror {
namespace {

std::shared_ptr<proxy::MirrorTxn> txn(int i, std::size_t body) {
  auto t = std::make_shared<proxy::MirrorTxn>();
  t->route = "app";
  t->session = static_cast<std::uint64_t>(i);
  t->to = i % 2 ? routing::Side::source : routing::Side::target;
  t->messages.assign(body, static_cast<std::uint8_t>(i));
  t->answers = static_cast<std::uint32_t>(i + 1);
  t->outcome = {"INSERT 0 1", "COMMIT " + std::to_string(i)};
  t->fingerprint = "INSERT INTO t VALUES ($1)";
  t->params = std::make_shared<std::vector<std::pair<std::string, std::string>>>(
      std::vector<std::pair<std::string, std::string>>{{"TimeZone", "UTC"}, {"search_path", ""}});
  t->committed_at = std::chrono::steady_clock::now();
  t->changes_settings = i % 3 == 0;
  t->joinable = i % 4 == 0;
  return t;
}

class SpoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("pgshift-spool-test-" + std::to_string(::getpid()));
    std::string error;
    ASSERT_TRUE(spool_.open(dir_.string(), "app.spool", error)) << error;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
  Spool spool_;
};

TEST_F(SpoolTest, RecordsComeBackWholeAndInOrderWithTheirCompletions) {
  std::vector<int> completed;
  std::vector<std::shared_ptr<proxy::MirrorTxn>> in;
  std::string error;
  for (int i = 0; i < 50; ++i) {
    auto t = txn(i, 1000 + i);
    if (i % 10 == 0) t->done = [&completed, i](bool ok) { completed.push_back(ok ? i : -i); };
    in.push_back(std::make_shared<proxy::MirrorTxn>(*t));
    ASSERT_TRUE(spool_.append(t, error)) << error;
  }
  EXPECT_EQ(spool_.count(), 50u);
  EXPECT_GT(spool_.bytes(), 50'000u);
  std::vector<std::shared_ptr<proxy::MirrorTxn>> out;
  while (spool_.count() > 0) {
    auto batch = spool_.take(10'000, error);  // several records per batch
    ASSERT_TRUE(error.empty()) << error;
    ASSERT_FALSE(batch.empty());
    out.insert(out.end(), batch.begin(), batch.end());
  }
  ASSERT_EQ(out.size(), 50u);
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(out[i]->session, in[i]->session);
    EXPECT_EQ(out[i]->to, in[i]->to);
    EXPECT_EQ(out[i]->messages, in[i]->messages);
    EXPECT_EQ(out[i]->answers, in[i]->answers);
    EXPECT_EQ(out[i]->outcome, in[i]->outcome);
    EXPECT_EQ(out[i]->fingerprint, in[i]->fingerprint);
    EXPECT_EQ(*out[i]->params, *in[i]->params);
    EXPECT_EQ(out[i]->committed_at, in[i]->committed_at);
    EXPECT_EQ(out[i]->changes_settings, in[i]->changes_settings) << i;
    EXPECT_EQ(out[i]->joinable, in[i]->joinable) << i;
    EXPECT_EQ(static_cast<bool>(out[i]->done), i % 10 == 0) << i;
    if (out[i]->done) out[i]->done(true);
  }
  EXPECT_EQ(completed, (std::vector<int>{0, 10, 20, 30, 40}));
  EXPECT_EQ(spool_.bytes(), 0u);
  EXPECT_EQ(std::filesystem::file_size(spool_.path()), 0u);
}

TEST_F(SpoolTest, ClearHandsBackTheCompletionsAndEmptiesTheFile) {
  std::string error;
  int failed = 0;
  for (int i = 0; i < 5; ++i) {
    auto t = txn(i, 100);
    t->done = [&failed](bool ok) { failed += ok ? 0 : 1; };
    ASSERT_TRUE(spool_.append(t, error)) << error;
  }
  for (auto& d : spool_.clear()) d(false);
  EXPECT_EQ(failed, 5);
  EXPECT_EQ(spool_.count(), 0u);
  EXPECT_EQ(spool_.txn_bytes(), 0u);
  EXPECT_EQ(std::filesystem::file_size(spool_.path()), 0u);
  ASSERT_TRUE(spool_.append(txn(9, 10), error)) << error;  // usable again
  EXPECT_EQ(spool_.take(1, error).at(0)->session, 9u);
}

TEST(Spool, AnUnwritableDirectoryIsAClearError) {
  Spool s;
  std::string error;
  EXPECT_FALSE(s.open("/proc/pgshift-no-such-dir", "x.spool", error));
  EXPECT_NE(error.find("cannot open the mirror spool /proc/pgshift-no-such-dir/x.spool"),
            std::string::npos)
      << error;
}

}  // namespace
}  // namespace pgshift::mirror
