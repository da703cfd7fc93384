#pragma once
// Password guessing defence (issue 16 item 7, docs/tls-and-auth.md "Failed logins"): a token
// bucket of failed password logins per client address (an IPv6 client counts per /64, what
// one host usually gets) and one per user name over all addresses.
//
// Each password login takes one token from both buckets before its exchange starts; a
// bucket holds `burst` tokens and gets one back per `failure_interval`. A login that finds a
// bucket empty reserves a later token and waits for it (an asio timer in the login
// coroutine, never a blocked thread); one that would wait longer than `max_delay` is refused
// at once. A successful login, and one that ends before a password was checked, give the
// token back, so only wrong passwords use up a budget and good logins from other addresses
// (and for other users) never wait. Tokens are reserved only for keys that had wrong
// passwords lately (an entry exists): then the limit holds for parallel connections too;
// logins from a clean address or for a clean user never wait, however many run at once.
//
// Memory is bounded: at most `max_tracked` entries per kind; when full, entries whose bucket
// has refilled go first, then the least recently used.
//
// Thread-safety: every member may be called from any thread (one mutex, taken twice per
// password login).
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "config/config.hpp"

namespace pgshift::proxy {

class AuthThrottle {
 public:
  using Clock = std::chrono::steady_clock;

  enum class Action : std::uint8_t { go, wait, refuse };
  enum class Outcome : std::uint8_t { ok, wrong_password, abandoned };

  struct Decision {
    Action action = Action::go;
    Clock::duration delay{};     // wait: before the exchange; refuse: until a token is free
    bool by_user = false;        // the user's bucket, not the address's, is the tighter
    bool burst_started = false;  // first throttled attempt since this key recovered: log it
    std::uint64_t failures = 0;  // failed logins counted for that key in its current burst
  };

  // Before a password exchange. go and wait reserve a token in each bucket that exists
  // (wrong passwords seen lately): pass the same arguments to end() afterwards (refuse
  // reserves nothing).
  Decision begin(const config::AuthThrottle& s, std::string_view address, std::string_view user,
                 Clock::time_point now);
  void end(const config::AuthThrottle& s, std::string_view address, std::string_view user,
           Outcome outcome, Clock::time_point now);

  std::size_t tracked_addresses() const;
  std::size_t tracked_users() const;

 private:
  struct Entry {
    double tokens = 0;  // may be negative: attempts reserved ahead
    Clock::time_point last{};
    bool throttling = false;  // inside a burst (logged once)
    std::uint64_t failures = 0;
  };
  using Table = std::unordered_map<std::string, Entry>;

  static void refill(Entry& e, int burst, double interval_ns, Clock::time_point now);
  static Clock::duration wait_for(const Entry& e, double interval_ns);
  Entry& entry(Table& t, std::string_view key, int burst, double interval_ns, int max_tracked,
               Clock::time_point now);
  void give_back(Table& t, std::string_view key, int burst, double interval_ns, bool count_failure,
                 int max_tracked, Clock::time_point now);

  mutable std::mutex mu_;
  Table addresses_, users_;
};

// The process-wide throttle used by client logins.
AuthThrottle& client_auth_throttle();

// The throttle key of a client address: the address itself for IPv4 (also IPv4-mapped
// IPv6), its /64 prefix for IPv6 ("2001:db8:1:2::/64").
std::string throttle_address_key(const std::string& address);

}  // namespace pgshift::proxy
