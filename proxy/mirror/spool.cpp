#include "proxy/mirror/spool.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace pgshift::mirror {
namespace {

void put_u64(std::string& out, std::uint64_t v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}
void put_u32(std::string& out, std::uint32_t v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}
void put_str(std::string& out, std::string_view s) {
  put_u32(out, static_cast<std::uint32_t>(s.size()));
  out.append(s);
}

// Reads the fields put_* wrote; `ok` turns false on a short record (never expected: the
// file is only written by this process).
struct Reader {
  const char* p;
  const char* end;
  bool ok = true;
  template <typename T>
  T num() {
    T v{};
    if (end - p < static_cast<std::ptrdiff_t>(sizeof v)) {
      ok = false;
      return v;
    }
    std::memcpy(&v, p, sizeof v);
    p += sizeof v;
    return v;
  }
  std::string str() {
    const auto n = num<std::uint32_t>();
    if (!ok || end - p < static_cast<std::ptrdiff_t>(n)) {
      ok = false;
      return {};
    }
    std::string s(p, n);
    p += n;
    return s;
  }
};

std::string encode(const proxy::MirrorTxn& t, std::uint64_t seq) {
  std::string r;
  r.reserve(t.messages.size() + t.fingerprint.size() + 128);
  put_u32(r, 0);  // the length, set below
  put_u64(r, seq);
  put_u64(r, t.session);
  put_u32(r, (t.to == routing::Side::target ? 1u : 0u) | (t.changes_settings ? 2u : 0u) |
                 (t.joinable ? 4u : 0u));
  put_u32(r, t.answers);
  put_u64(r, static_cast<std::uint64_t>(t.committed_at.time_since_epoch().count()));
  put_str(r, t.route);
  put_str(r, t.fingerprint);
  put_u32(r, static_cast<std::uint32_t>(t.outcome.size()));
  for (const auto& o : t.outcome) put_str(r, o);
  const auto np = t.params ? t.params->size() : 0;
  put_u32(r, static_cast<std::uint32_t>(np));
  for (std::size_t i = 0; i < np; ++i) {
    put_str(r, (*t.params)[i].first);
    put_str(r, (*t.params)[i].second);
  }
  put_str(r, std::string_view(reinterpret_cast<const char*>(t.messages.data()), t.messages.size()));
  const auto len = static_cast<std::uint32_t>(r.size());
  std::memcpy(r.data(), &len, sizeof len);
  return r;
}

std::shared_ptr<proxy::MirrorTxn> decode(Reader& in, std::uint64_t& seq) {
  auto t = std::make_shared<proxy::MirrorTxn>();
  seq = in.num<std::uint64_t>();
  t->session = in.num<std::uint64_t>();
  const auto flags = in.num<std::uint32_t>();
  t->to = (flags & 1u) ? routing::Side::target : routing::Side::source;
  t->changes_settings = (flags & 2u) != 0;
  t->joinable = (flags & 4u) != 0;
  t->answers = in.num<std::uint32_t>();
  t->committed_at = std::chrono::steady_clock::time_point(
      std::chrono::steady_clock::duration(static_cast<std::int64_t>(in.num<std::uint64_t>())));
  t->route = in.str();
  t->fingerprint = in.str();
  const auto no = in.num<std::uint32_t>();
  for (std::uint32_t i = 0; in.ok && i < no; ++i) t->outcome.push_back(in.str());
  const auto np = in.num<std::uint32_t>();
  auto params = std::make_shared<std::vector<std::pair<std::string, std::string>>>();
  for (std::uint32_t i = 0; in.ok && i < np; ++i) {
    auto k = in.str();
    params->emplace_back(std::move(k), in.str());
  }
  t->params = std::move(params);
  const auto m = in.str();
  t->messages.assign(m.begin(), m.end());
  return in.ok ? t : nullptr;
}

bool write_all(int fd, const std::string& data, std::uint64_t offset) {
  std::size_t done = 0;
  while (done < data.size()) {
    const auto n =
        ::pwrite(fd, data.data() + done, data.size() - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace

Spool::~Spool() {
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(path_.c_str());
  }
}

bool Spool::open(const std::string& dir, const std::string& name, std::string& error) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  path_ = (std::filesystem::path(dir) / name).string();
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd_ < 0) {
    error = "cannot open the mirror spool " + path_ + ": " + std::strerror(errno) +
            (ec ? " (creating the directory: " + ec.message() + ")" : "");
    return false;
  }
  return true;
}

bool Spool::append(std::shared_ptr<proxy::MirrorTxn> txn, std::string& error) {
  const std::string rec = encode(*txn, next_seq_);
  if (!write_all(fd_, rec, write_offset_)) {
    error = "cannot write the mirror spool " + path_ + ": " + std::strerror(errno);
    return false;
  }
  if (txn->done) done_.emplace(next_seq_, std::move(txn->done));
  ++next_seq_;
  write_offset_ += rec.size();
  txn_bytes_ += txn->size();
  ++count_;
  return true;
}

std::vector<std::shared_ptr<proxy::MirrorTxn>> Spool::take(std::uint64_t max_bytes,
                                                           std::string& error) {
  std::vector<std::shared_ptr<proxy::MirrorTxn>> out;
  std::uint64_t taken = 0;
  std::string buf;
  while (count_ > 0 && (out.empty() || taken < max_bytes)) {
    std::uint32_t len = 0;
    if (::pread(fd_, &len, sizeof len, static_cast<off_t>(read_offset_)) !=
            static_cast<ssize_t>(sizeof len) ||
        len < sizeof len) {
      error = "cannot read the mirror spool " + path_ + ": " + std::strerror(errno);
      return out;
    }
    buf.resize(len);
    if (::pread(fd_, buf.data(), len, static_cast<off_t>(read_offset_)) !=
        static_cast<ssize_t>(len)) {
      error = "cannot read the mirror spool " + path_ + ": " + std::strerror(errno);
      return out;
    }
    Reader in{buf.data() + sizeof len, buf.data() + buf.size()};
    std::uint64_t seq = 0;
    auto t = decode(in, seq);
    if (!t) {
      error = "the mirror spool " + path_ + " has a damaged record at offset " +
              std::to_string(read_offset_);
      return out;
    }
    if (auto it = done_.find(seq); it != done_.end()) {
      t->done = std::move(it->second);
      done_.erase(it);
    }
    read_offset_ += len;
    --count_;
    txn_bytes_ -= std::min(txn_bytes_, t->size());
    taken += t->size();
    out.push_back(std::move(t));
  }
  if (count_ == 0) reset_file();
  return out;
}

std::vector<std::function<void(bool)>> Spool::clear() {
  std::vector<std::function<void(bool)>> dones;
  if (count_ == 0 && write_offset_ == 0) return dones;
  for (auto& [seq, d] : done_) dones.push_back(std::move(d));
  done_.clear();
  count_ = 0;
  txn_bytes_ = 0;
  reset_file();
  return dones;
}

// The spool is empty: give the disk space back and start again at offset 0.
void Spool::reset_file() {
  read_offset_ = write_offset_ = 0;
  if (fd_ >= 0) [[maybe_unused]]
    auto r = ::ftruncate(fd_, 0);
}

}  // namespace pgshift::mirror
