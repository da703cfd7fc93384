#pragma once
// The server-side names of the prepared statements a server connection holds, as an LRU set
// with a capacity (routes[].pool.prepared_statement_cache_size). Owned by the connection;
// not thread-safe (the connection is used by one session at a time).
#include <cstddef>
#include <list>
#include <optional>
#include <string>
#include <unordered_map>

namespace pgshift::pool {

class PreparedSet {
 public:
  explicit PreparedSet(std::size_t capacity = 256) : capacity_(capacity == 0 ? 1 : capacity) {}

  bool contains(const std::string& name) const { return index_.contains(name); }
  // Marks `name` most recently used.
  void touch(const std::string& name) {
    auto it = index_.find(name);
    if (it != index_.end()) order_.splice(order_.begin(), order_, it->second);
  }
  // Adds `name`; returns the least recently used name that must now be closed on the server
  // to stay within capacity, if any.
  std::optional<std::string> add(const std::string& name) {
    if (contains(name)) {
      touch(name);
      return std::nullopt;
    }
    order_.push_front(name);
    index_.emplace(name, order_.begin());
    if (index_.size() <= capacity_) return std::nullopt;
    std::string victim = std::move(order_.back());
    order_.pop_back();
    index_.erase(victim);
    return victim;
  }
  void erase(const std::string& name) {
    auto it = index_.find(name);
    if (it == index_.end()) return;
    order_.erase(it->second);
    index_.erase(it);
  }
  void clear() {
    order_.clear();
    index_.clear();
  }
  std::size_t size() const { return index_.size(); }
  void set_capacity(std::size_t c) { capacity_ = c == 0 ? 1 : c; }

 private:
  std::size_t capacity_;
  std::list<std::string> order_;  // most recent first
  std::unordered_map<std::string, std::list<std::string>::iterator> index_;
};

}  // namespace pgshift::pool
