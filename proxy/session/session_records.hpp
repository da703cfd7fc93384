#pragma once
// Where session records live (session_records.cpp): slots of one size in chunks mapped for
// them, outside the general heap. Used through SessionRecordAllocator by
// ClientSession::create (std::allocate_shared). Thread-safe: a session is made on the
// accepting thread and freed on its own.
#include <cstddef>
#include <new>

namespace pgshift::proxy {

namespace session_records {
// A slot of `bytes`; the first call fixes the slot size, any other size comes from operator
// new (and goes back there).
void* allocate(std::size_t bytes);
void deallocate(void* p, std::size_t bytes) noexcept;
}  // namespace session_records

template <class T>
struct SessionRecordAllocator {
  using value_type = T;
  SessionRecordAllocator() = default;
  template <class U>
  SessionRecordAllocator(const SessionRecordAllocator<U>&) noexcept {}
  T* allocate(std::size_t n) { return static_cast<T*>(session_records::allocate(n * sizeof(T))); }
  void deallocate(T* p, std::size_t n) noexcept { session_records::deallocate(p, n * sizeof(T)); }
  template <class U>
  bool operator==(const SessionRecordAllocator<U>&) const noexcept {
    return true;
  }
};

}  // namespace pgshift::proxy
