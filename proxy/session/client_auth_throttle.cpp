#include "proxy/session/client_auth_throttle.hpp"

#include <algorithm>
#include <boost/asio/ip/address.hpp>
#include <vector>

namespace pgshift::proxy {
namespace {

double interval_ns(const config::AuthThrottle& s) {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(s.failure_interval).count();
  return static_cast<double>(std::max<std::int64_t>(ns, 1));
}

}  // namespace

void AuthThrottle::refill(Entry& e, int burst, double interval, Clock::time_point now) {
  if (now > e.last) {
    auto elapsed = std::chrono::duration_cast<std::chrono::nanoseconds>(now - e.last).count();
    e.tokens = std::min<double>(burst, e.tokens + static_cast<double>(elapsed) / interval);
    e.last = now;
  }
  e.tokens = std::min<double>(burst, e.tokens);  // a lower burst after a reload
  if (e.tokens >= burst) {                       // recovered: the next burst is a new one
    e.throttling = false;
    e.failures = 0;
  }
}

AuthThrottle::Clock::duration AuthThrottle::wait_for(const Entry& e, double interval) {
  if (e.tokens >= 1) return Clock::duration::zero();
  return std::chrono::duration_cast<Clock::duration>(
      std::chrono::nanoseconds(static_cast<std::int64_t>((1 - e.tokens) * interval)));
}

AuthThrottle::Entry& AuthThrottle::entry(Table& t, std::string_view key, int burst, double interval,
                                         int max_tracked, Clock::time_point now) {
  std::string k(key);
  if (auto it = t.find(k); it != t.end()) return it->second;
  if (t.size() >= static_cast<std::size_t>(max_tracked)) {
    // Full: forget what has recovered, then the least recently used tenth.
    for (auto it = t.begin(); it != t.end();) {
      refill(it->second, burst, interval, now);
      it = it->second.tokens >= burst ? t.erase(it) : std::next(it);
    }
    if (t.size() >= static_cast<std::size_t>(max_tracked)) {
      std::vector<std::pair<Clock::time_point, std::string>> by_age;
      by_age.reserve(t.size());
      for (const auto& [name, e] : t) by_age.emplace_back(e.last, name);
      const std::size_t drop = t.size() - static_cast<std::size_t>(max_tracked) * 9 / 10;
      std::nth_element(by_age.begin(), by_age.begin() + static_cast<std::ptrdiff_t>(drop - 1),
                       by_age.end());
      for (std::size_t i = 0; i < drop; ++i) t.erase(by_age[i].second);
    }
  }
  Entry& e = t[k];
  e.tokens = burst;
  e.last = now;
  return e;
}

AuthThrottle::Decision AuthThrottle::begin(const config::AuthThrottle& s, std::string_view address,
                                           std::string_view user, Clock::time_point now) {
  const double interval = interval_ns(s);
  const bool per_user = s.user_failures_burst > 0;
  std::lock_guard lock(mu_);
  Entry* a = nullptr;
  Entry* u = nullptr;
  if (auto it = addresses_.find(std::string(address)); it != addresses_.end()) a = &it->second;
  if (per_user) {
    if (auto it = users_.find(std::string(user)); it != users_.end()) u = &it->second;
  }
  if (a) refill(*a, s.failures_burst, interval, now);
  if (u) refill(*u, s.user_failures_burst, interval, now);
  const auto wait_a = a ? wait_for(*a, interval) : Clock::duration::zero();
  const auto wait_u = u ? wait_for(*u, interval) : Clock::duration::zero();

  Decision d;
  d.by_user = wait_u > wait_a;
  d.delay = std::max(wait_a, wait_u);
  if (d.delay > Clock::duration::zero()) {
    Entry* tight = d.by_user ? u : a;
    d.burst_started = !tight->throttling;
    tight->throttling = true;
    d.failures = tight->failures;
  }
  if (d.delay > s.max_delay) {
    d.action = Action::refuse;
    return d;
  }
  d.action = d.delay > Clock::duration::zero() ? Action::wait : Action::go;
  // Reserve, only where wrong passwords were seen lately (an entry exists): logins from a
  // clean address or for a clean user are never held back, however many run at once.
  if (a) a->tokens -= 1;
  if (u) u->tokens -= 1;
  return d;
}

void AuthThrottle::give_back(Table& t, std::string_view key, int burst, double interval,
                             bool count_failure, int max_tracked, Clock::time_point now) {
  auto it = t.find(std::string(key));
  if (it == t.end()) {
    // Nothing was reserved (no failure seen lately), or the entry was evicted meanwhile: a
    // wrong password starts (again) to use up the key's budget.
    if (count_failure) {
      Entry& e = entry(t, key, burst, interval, max_tracked, now);
      e.tokens -= 1;
      ++e.failures;
    }
    return;
  }
  Entry& e = it->second;
  refill(e, burst, interval, now);
  if (count_failure) {
    ++e.failures;
    return;
  }
  e.tokens = std::min<double>(burst, e.tokens + 1);
  if (e.tokens >= burst) t.erase(it);
}

void AuthThrottle::end(const config::AuthThrottle& s, std::string_view address,
                       std::string_view user, Outcome outcome, Clock::time_point now) {
  const double interval = interval_ns(s);
  const bool failed = outcome == Outcome::wrong_password;
  std::lock_guard lock(mu_);
  give_back(addresses_, address, s.failures_burst, interval, failed, s.max_tracked, now);
  if (s.user_failures_burst > 0) {
    give_back(users_, user, s.user_failures_burst, interval, failed, s.max_tracked, now);
  }
}

std::size_t AuthThrottle::tracked_addresses() const {
  std::lock_guard lock(mu_);
  return addresses_.size();
}

std::size_t AuthThrottle::tracked_users() const {
  std::lock_guard lock(mu_);
  return users_.size();
}

AuthThrottle& client_auth_throttle() {
  static AuthThrottle throttle;
  return throttle;
}

std::string throttle_address_key(const std::string& address) {
  boost::system::error_code ec;
  auto a = boost::asio::ip::make_address(address, ec);
  if (ec) return address;
  if (a.is_v6() && a.to_v6().is_v4_mapped()) {
    return boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, a.to_v6()).to_string();
  }
  if (a.is_v4()) return a.to_string();
  auto bytes = a.to_v6().to_bytes();
  std::fill(bytes.begin() + 8, bytes.end(), 0);
  return boost::asio::ip::address_v6(bytes).to_string() + "/64";
}

}  // namespace pgshift::proxy
