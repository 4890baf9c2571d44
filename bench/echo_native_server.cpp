// The limit: an echo server with no Python at all, one thread, epoll,
// level-triggered, reads of up to 256 KiB (pyloop reads a large message
// whole, up to that much), echoing what it reads and
// keeping what the socket won't take until it is writable. The echo
// benchmark runs it under the same client as the event loops, so every
// loop's share of what this machine can do shows.
//
// Prints "ready PORT" once listening on 127.0.0.1 (an ephemeral port), as
// bench/echo_server.py does, and serves until killed.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <string>
#include <unordered_map>

#include "echo_listener.hpp"

namespace {

struct Connection {
  std::string pending;  // echoed bytes the socket has not taken yet
};

void watch(int ep, int fd, std::uint32_t events, int op) {
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = fd;
  epoll_ctl(ep, op, fd, &ev);
}

// Sends data[0..len), keeping the rest in c.pending. False: the peer is gone.
bool send_or_keep(int ep, int fd, Connection& c, const char* data, std::size_t len) {
  while (len > 0) {
    ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) return false;
      bool was_empty = c.pending.empty();
      c.pending.append(data, len);
      if (was_empty) watch(ep, fd, EPOLLIN | EPOLLOUT, EPOLL_CTL_MOD);
      return true;
    }
    data += n;
    len -= static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace

int main() {
  int listener = listen_on_loopback();
  if (listener < 0) return 1;
  int ep = epoll_create1(EPOLL_CLOEXEC);
  watch(ep, listener, EPOLLIN, EPOLL_CTL_ADD);
  std::printf("ready %d\n", port_of(listener));
  std::fflush(stdout);
  std::unordered_map<int, Connection> conns;
  static char buf[256 * 1024];
  epoll_event events[256];
  for (;;) {
    int n = epoll_wait(ep, events, 256, -1);
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == listener) {
        int c;
        while ((c = accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
          int on = 1;
          setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
          conns[c];
          watch(ep, c, EPOLLIN, EPOLL_CTL_ADD);
        }
        continue;
      }
      Connection& c = conns[fd];
      bool alive = true;
      if ((events[i].events & EPOLLOUT) && !c.pending.empty()) {
        std::string rest;
        rest.swap(c.pending);
        alive = send_or_keep(ep, fd, c, rest.data(), rest.size());
        if (alive && c.pending.empty()) watch(ep, fd, EPOLLIN, EPOLL_CTL_MOD);
      }
      if (alive && (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && c.pending.empty()) {
        ssize_t got = recv(fd, buf, sizeof buf, 0);
        if (got > 0) {
          alive = send_or_keep(ep, fd, c, buf, static_cast<std::size_t>(got));
        } else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
          alive = false;
        }
      }
      if (!alive) {
        close(fd);  // also leaves the epoll set
        conns.erase(fd);
      }
    }
  }
}
