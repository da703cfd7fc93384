#pragma once
// The multiplexed relay's state machine (docs/architecture.md, "The relay's state machine"):
// what each direction of a session is doing, as one value per direction instead of a set of
// booleans. ClientSession holds one C2s and one S2c (and the server direction's Fence, the
// stale sidecar's re-run) and changes each only through its transition function, which
// asserts that the step is legal (legal() below). Pure: no I/O; thread-safety: values, used
// on the session's thread.
#include <cstdint>
#include <string_view>

namespace pgshift::proxy {

// Client to server: the coroutine that reads the client.
enum class C2s : std::uint8_t {
  running,   // handles the client's bytes, or waits for anything but a hot idle read
  hot_wait,  // hot, in a read of the client with nothing held: the IdleSweeper may cancel it
  parked,    // no coroutine: the idle client waits for readiness (ThreadSessions)
  woken,     // readiness seen: a coroutine was spawned and has not read yet
};

// Server to client: the coroutine that reads the active server and writes the client.
enum class S2c : std::uint8_t {
  stopped,    // no coroutine: no server held and nothing to write (wake_server_reader starts it)
  running,    // runs and holds no server bytes (writes the proxy's answers, looks at the state)
  idle_wait,  // waits for the server's next bytes with none held: may be cancelled
  waking,     // idle_wait, and asked to look at the state again when the wait ends
  holding,    // holds part of the server's answer: from its first bytes to the boundary
  done,       // the session ended: says goodbye, gives its servers back; never started again
};

// The stale sidecar's re-run of a fenced transaction (relay/fence_retry.cpp), a second axis of
// the server direction. While it is not `none` the client direction sends nothing.
enum class Fence : std::uint8_t {
  none,
  dropping,      // a fence error was dropped: the old side's answers are dropped up to its Z
  rolling_back,  // the old side's failed transaction is rolled back (answers dropped too)
  rerunning,     // the logged messages run again on the new side
};

namespace relay_state {

template <typename E>
constexpr unsigned bit(E e) {
  return 1u << static_cast<unsigned>(e);
}

// The states each state may go to (staying is always legal).
constexpr unsigned next_states(C2s from) {
  switch (from) {
    case C2s::running:
      return bit(C2s::hot_wait) | bit(C2s::parked);
    case C2s::hot_wait:
      return bit(C2s::running);
    case C2s::parked:
      return bit(C2s::woken);
    case C2s::woken:
      return bit(C2s::running);
  }
  return 0;
}

constexpr unsigned next_states(S2c from) {
  switch (from) {
    case S2c::stopped:
      return bit(S2c::running);
    case S2c::running:
      return bit(S2c::idle_wait) | bit(S2c::holding) | bit(S2c::stopped) | bit(S2c::done);
    case S2c::idle_wait:
      return bit(S2c::waking) | bit(S2c::running);
    case S2c::waking:
      return bit(S2c::running);
    case S2c::holding:
      return bit(S2c::idle_wait) | bit(S2c::running) | bit(S2c::stopped) | bit(S2c::done);
    case S2c::done:
      return 0;
  }
  return 0;
}

constexpr unsigned next_states(Fence from) {
  switch (from) {
    case Fence::none:
      return bit(Fence::dropping);
    case Fence::dropping:
      return bit(Fence::rolling_back) | bit(Fence::rerunning) | bit(Fence::none);
    case Fence::rolling_back:
      return bit(Fence::rerunning) | bit(Fence::none);
    case Fence::rerunning:
      return bit(Fence::dropping) | bit(Fence::none);
  }
  return 0;
}

}  // namespace relay_state

template <typename E>
constexpr bool legal(E from, E to) {
  return from == to || (relay_state::next_states(from) & relay_state::bit(to)) != 0;
}

std::string_view to_string(C2s s);
std::string_view to_string(S2c s);
std::string_view to_string(Fence s);

}  // namespace pgshift::proxy
