#include "proxy/migrate/schema_copy.hpp"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace pgshift::migrate {

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + path);
}

// Connection arguments for pg_dump/psql; the password goes in the environment, never argv.
std::vector<std::string> conn_args(const pgclient::ConnInfo& info) {
  return {"-h", info.host,   "-p", std::to_string(info.port), "-U", info.user,
          "-d", info.dbname, "-w"};
}

std::vector<std::string> conn_env(const pgclient::ConnInfo& info) {
  std::vector<std::string> env{"PGPASSWORD=" + info.password, "PGSSLMODE=" + info.sslmode,
                               "PGCONNECT_TIMEOUT=" + std::to_string(info.connect_timeout_s)};
  if (!info.sslrootcert.empty()) env.push_back("PGSSLROOTCERT=" + info.sslrootcert);
  return env;
}

}  // namespace

void split_post_data(const std::string& script, std::string& primary_keys, std::string& rest) {
  std::istringstream in(script);
  std::string line, preamble, block;
  bool in_block = false, block_is_pk = false;
  auto flush = [&] {
    if (!in_block) return;
    (block_is_pk ? primary_keys : rest) += block;
    block.clear();
  };
  while (std::getline(in, line)) {
    if (line.rfind("-- Name: ", 0) == 0) {
      flush();
      in_block = true;
      block_is_pk = false;
    }
    if (!in_block) {
      preamble += line + "\n";
      continue;
    }
    if (line.find("PRIMARY KEY") != std::string::npos &&
        block.find("Type: CONSTRAINT;") != std::string::npos) {
      block_is_pk = true;
    }
    block += line + "\n";
  }
  flush();
  primary_keys = preamble + primary_keys;
  rest = preamble + rest;
}

SchemaCopy::SchemaCopy(const SyncSides& sides, std::vector<TableRef> tables)
    : sides_(sides), tables_(std::move(tables)) {
  std::string tmpl = (std::filesystem::temp_directory_path() / "pgshift-schema-XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("cannot create a temporary directory");
  dir_ = tmpl;
}

SchemaCopy::~SchemaCopy() {
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

void SchemaCopy::dump(const std::string& section, const std::string& file) {
  std::vector<std::string> argv{
      "pg_dump",         "--schema-only",     "--section=" + section, "--no-owner",
      "--no-privileges", "--no-publications", "--no-subscriptions",   "--exclude-schema=pgshift"};
  auto c = conn_args(sides_.source);
  argv.insert(argv.end(), c.begin(), c.end());
  if (!sides_.route->sync.tables.empty()) {
    for (const auto& t : tables_) argv.push_back("--table=" + t.qualified());
  }
  int rc = run_process(argv, conn_env(sides_.source), file);
  if (rc != 0) {
    throw std::runtime_error("pg_dump --section=" + section + " of the source failed (exit " +
                             std::to_string(rc) + "); its message is above");
  }
}

void SchemaCopy::apply(const std::string& file) {
  std::vector<std::string> argv{"psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction",
                                "-f",   file};
  auto c = conn_args(sides_.target);
  argv.insert(argv.end(), c.begin(), c.end());
  int rc = run_process(argv, conn_env(sides_.target), "/dev/null");
  if (rc != 0) {
    throw std::runtime_error("psql could not apply " + file + " to the target (exit " +
                             std::to_string(rc) + "); its message is above");
  }
}

void SchemaCopy::before_copy() {
  const std::string pre = dir_ + "/pre-data.sql", post = dir_ + "/post-data.sql";
  dump("pre-data", pre);
  dump("post-data", post);
  std::string pks;
  split_post_data(read_file(post), pks, post_rest_);
  write_file(dir_ + "/primary-keys.sql", pks);
  apply(pre);
  apply(dir_ + "/primary-keys.sql");
}

void SchemaCopy::after_copy() {
  write_file(dir_ + "/post-data-rest.sql", post_rest_);
  apply(dir_ + "/post-data-rest.sql");
}

}  // namespace pgshift::migrate
