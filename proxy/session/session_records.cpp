// Session records in slots of their own. A session outlives everything its login allocated
// (coroutine frames, the startup packet, authentication state, receive blocks). In the
// general heap each record sat between the freed pieces of those and pinned their pages:
// after a burst of 10,000 logins that was about a third of what an idle client cost. Here
// the records pack densely in chunks mapped for them, and the heap the logins used can be
// given back whole (IdleSweeper trims it). A freed slot is reused by the next login; chunks
// stay mapped (the high-water mark of concurrent sessions), as PgBouncer's slab caches do.
#include "proxy/session/session_records.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <cstddef>
#include <memory>
#include <mutex>
#include <new>
#include <utility>

#include "proxy/session/asan.hpp"
#include "proxy/session/session.hpp"

// Under AddressSanitizer a slot is poisoned while it is free or not yet handed out, so a use
// of a session record after its free is reported (asan.hpp).
namespace pgshift::proxy::session_records {
namespace {

constexpr std::size_t kChunkBytes = 256 * 1024;

struct FreeSlot {
  FreeSlot* next;
};

struct Slab {
  std::mutex mu;
  std::size_t slot = 0;       // bytes per slot, fixed by the first allocation
  FreeSlot* free = nullptr;   // freed slots
  char* fresh = nullptr;      // never-used slots of the newest chunk start here
  char* fresh_end = nullptr;  // and end here
};

Slab& slab() {
  static Slab s;
  return s;
}

// A record's size rounded up to the alignment every slot keeps.
std::size_t slot_bytes(std::size_t bytes) {
  constexpr std::size_t kAlign = alignof(std::max_align_t);
  return (bytes + kAlign - 1) / kAlign * kAlign;
}

bool new_chunk(Slab& s) {
  void* p =
      ::mmap(nullptr, kChunkBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return false;
  s.fresh = static_cast<char*>(p);
  s.fresh_end = s.fresh + kChunkBytes / s.slot * s.slot;
  asan::poison(p, kChunkBytes);
  return true;
}

}  // namespace

void* allocate(std::size_t bytes) {
  const std::size_t rounded = slot_bytes(bytes);
  Slab& s = slab();
  {
    std::lock_guard lock(s.mu);
    if (s.slot == 0) s.slot = rounded;
    if (rounded == s.slot) {
      if (FreeSlot* f = s.free) {
        asan::unpoison(f, std::max(bytes, sizeof(FreeSlot)));  // the padding stays poisoned
        s.free = f->next;
        return f;
      }
      if (s.fresh != s.fresh_end || new_chunk(s)) {
        void* p = s.fresh;
        s.fresh += s.slot;
        asan::unpoison(p, bytes);
        return p;
      }
    }
  }
  return ::operator new(bytes);  // another size, or no memory could be mapped
}

void deallocate(void* p, std::size_t bytes) noexcept {
  const std::size_t rounded = slot_bytes(bytes);
  Slab& s = slab();
  std::lock_guard lock(s.mu);
  if (rounded != s.slot) {
    ::operator delete(p);
    return;
  }
  // A slot goes to the free list, even one that came from operator new after a failed
  // mmap: it has the slot's size and alignment, so it serves the next session as well.
  s.free = new (p) FreeSlot{s.free};
  asan::poison(p, s.slot);
}

}  // namespace pgshift::proxy::session_records

namespace pgshift::proxy {

std::shared_ptr<ClientSession> ClientSession::create(Runtime& runtime,
                                                     std::shared_ptr<pool::PoolSet> pools,
                                                     pool::tcp::socket socket, std::uint64_t id) {
  return std::allocate_shared<ClientSession>(SessionRecordAllocator<ClientSession>{}, runtime,
                                             std::move(pools), std::move(socket), id);
}

}  // namespace pgshift::proxy
