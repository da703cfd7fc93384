#include "config/secret.hpp"

#include <gtest/gtest.h>

#include <sstream>

#include "test_util.hpp"

namespace pgshift::config {
namespace {

using test::ScopedEnv;
using test::TempDir;

TEST(Secret, EmptySpecIsNone) {
  Secret s;
  EXPECT_TRUE(s.empty());
  EXPECT_EQ(s.kind(), Secret::Kind::none);
  EXPECT_EQ(s.describe(), "none");
  std::string error;
  EXPECT_TRUE(s.resolve(error));
  EXPECT_EQ(s.value(), "");
}

TEST(Secret, LiteralIsItsOwnValueButIsNeverDescribed) {
  auto s = Secret::from_spec("hunter2");
  EXPECT_EQ(s.kind(), Secret::Kind::literal);
  std::string error;
  ASSERT_TRUE(s.resolve(error));
  EXPECT_EQ(s.value(), "hunter2");
  EXPECT_EQ(s.describe(), "literal");
  std::ostringstream os;
  os << s;
  EXPECT_EQ(os.str(), "<secret literal>");
}

TEST(Secret, FromEnvironment) {
  ScopedEnv env("PGSHIFT_TEST_SECRET_ENV", "s3cr3t-from-env");
  auto s = Secret::from_spec("${env:PGSHIFT_TEST_SECRET_ENV}");
  EXPECT_EQ(s.kind(), Secret::Kind::env);
  EXPECT_EQ(s.source(), "PGSHIFT_TEST_SECRET_ENV");
  EXPECT_EQ(s.describe(), "env:PGSHIFT_TEST_SECRET_ENV");
  std::string error;
  ASSERT_TRUE(s.resolve(error)) << error;
  EXPECT_EQ(s.value(), "s3cr3t-from-env");
  std::ostringstream os;
  os << s;
  EXPECT_EQ(os.str().find("s3cr3t"), std::string::npos);
}

TEST(Secret, UnsetEnvironmentVariableIsNamed) {
  ScopedEnv env("PGSHIFT_TEST_SECRET_UNSET", std::nullopt);
  auto s = Secret::from_spec("${env:PGSHIFT_TEST_SECRET_UNSET}");
  std::string error;
  EXPECT_FALSE(s.resolve(error));
  EXPECT_NE(error.find("PGSHIFT_TEST_SECRET_UNSET"), std::string::npos) << error;
  EXPECT_NE(error.find("not set"), std::string::npos) << error;
}

TEST(Secret, EmptyEnvironmentVariableIsAnError) {
  ScopedEnv env("PGSHIFT_TEST_SECRET_EMPTY", "");
  auto s = Secret::from_spec("${env:PGSHIFT_TEST_SECRET_EMPTY}");
  std::string error;
  EXPECT_FALSE(s.resolve(error));
  EXPECT_NE(error.find("is empty"), std::string::npos) << error;
}

TEST(Secret, FromFileDropsTrailingNewlines) {
  TempDir dir;
  auto lf = dir.write("lf", "from-file\n");
  auto crlf = dir.write("crlf", "from-file\r\n");
  auto bare = dir.write("bare", "from file with spaces ");
  std::string error;
  auto a = Secret::from_spec("${file:" + lf + "}");
  EXPECT_EQ(a.kind(), Secret::Kind::file);
  EXPECT_EQ(a.describe(), "file:" + lf);
  ASSERT_TRUE(a.resolve(error)) << error;
  EXPECT_EQ(a.value(), "from-file");
  auto b = Secret::from_spec("${file:" + crlf + "}");
  ASSERT_TRUE(b.resolve(error)) << error;
  EXPECT_EQ(b.value(), "from-file");
  auto c = Secret::from_spec("${file:" + bare + "}");
  ASSERT_TRUE(c.resolve(error)) << error;
  EXPECT_EQ(c.value(), "from file with spaces ");
}

TEST(Secret, ResolveAgainRereadsTheFile) {
  TempDir dir;
  auto file = dir.write("pw", "first\n");
  auto s = Secret::from_spec("${file:" + file + "}");
  std::string error;
  ASSERT_TRUE(s.resolve(error));
  EXPECT_EQ(s.value(), "first");
  dir.write("pw", "rotated\n");
  ASSERT_TRUE(s.resolve(error));
  EXPECT_EQ(s.value(), "rotated");
}

TEST(Secret, MissingFileIsNamed) {
  TempDir dir;
  std::string path = (dir.path() / "nope").string();
  auto s = Secret::from_spec("${file:" + path + "}");
  std::string error;
  EXPECT_FALSE(s.resolve(error));
  EXPECT_NE(error.find(path), std::string::npos) << error;
  EXPECT_NE(error.find("No such file"), std::string::npos) << error;
  EXPECT_EQ(s.value(), "");
}

TEST(Secret, EmptyFileAndDirectoryAreErrors) {
  TempDir dir;
  auto empty = dir.write("empty", "\n");
  std::string error;
  auto a = Secret::from_spec("${file:" + empty + "}");
  EXPECT_FALSE(a.resolve(error));
  EXPECT_NE(error.find("is empty"), std::string::npos) << error;
  auto b = Secret::from_spec("${file:" + dir.path().string() + "}");
  EXPECT_FALSE(b.resolve(error));
  EXPECT_NE(error.find("not a regular file"), std::string::npos) << error;
}

TEST(Secret, UnknownReferenceIsRejectedWithoutEchoingIt) {
  for (std::string spec : {"${vault:kv/hunter2}", "${env:}", "${file:}", "${ENV:HUNTER2}"}) {
    auto s = Secret::from_spec(spec);
    EXPECT_EQ(s.kind(), Secret::Kind::invalid) << spec;
    std::string error;
    EXPECT_FALSE(s.resolve(error)) << spec;
    EXPECT_NE(error.find("${env:NAME}"), std::string::npos) << error;
    EXPECT_EQ(error.find("unter2"), std::string::npos) << error;
    EXPECT_EQ(error.find("HUNTER2"), std::string::npos) << error;
  }
}

TEST(Secret, TextThatOnlyLooksLikeAReferenceIsLiteral) {
  for (std::string spec : {"${env:X", "$env:X}", "pa${env:X}ss"}) {
    EXPECT_EQ(Secret::from_spec(spec).kind(), Secret::Kind::literal) << spec;
  }
}

}  // namespace
}  // namespace pgshift::config
