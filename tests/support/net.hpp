#pragma once
// Loopback ports for test servers.
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

namespace pgshift::test {

// A TCP port that was free on 127.0.0.1 a moment ago (bind to port 0, read it, close).
// Never returns the same port twice within one process, so servers started by one test
// binary do not collide with each other. Another process may still take it: servers that
// fail to bind should retry with a new port.
std::uint16_t free_port();

// True if a TCP connection to host:port is accepted right now.
bool port_accepts(const std::string& host, std::uint16_t port);

// Polls port_accepts until it succeeds (true), the timeout passes, or alive() returns false
// (e.g. the server process exited): false.
bool wait_for_port(const std::string& host, std::uint16_t port, std::chrono::milliseconds timeout,
                   const std::function<bool()>& alive = nullptr);

}  // namespace pgshift::test
