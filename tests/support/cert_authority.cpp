#include "cert_authority.hpp"

#include <stdexcept>

#include "paths.hpp"
#include "process.hpp"

namespace pgshift::test {

CertAuthority::CertAuthority(std::vector<std::string> hostnames, std::filesystem::path dir) {
  if (dir.empty()) {
    owned_dir_.emplace("pgshift-certs");
    dir_ = owned_dir_->path();
  } else {
    dir_ = std::move(dir);
  }
  generate("server", hostnames);
}

ServerCert CertAuthority::issue(const std::string& name,
                                const std::vector<std::string>& hostnames) const {
  generate(name, hostnames);
  return {dir_ / (name + ".crt"), dir_ / (name + ".key")};
}

void CertAuthority::generate(const std::string& name,
                             const std::vector<std::string>& hostnames) const {
  ProcessOptions options;
  options.argv = {"bash", (source_dir() / "scripts" / "gen-certs.sh").string(), dir_.string()};
  options.argv.insert(options.argv.end(), hostnames.begin(), hostnames.end());
  options.env["CERT_NAME"] = name;
  const CommandResult result = run_command(std::move(options), std::chrono::seconds(60));
  if (!result.success()) {
    throw std::runtime_error("gen-certs.sh failed for " + name + ": " + result.describe());
  }
}

}  // namespace pgshift::test
