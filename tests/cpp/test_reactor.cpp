// The epoll reactor: readiness is reported with the registered token, stays
// reported while the fd stays ready (level-triggered), and stops after remove.
#include <sys/socket.h>
#include <unistd.h>

#include "check.hpp"
#include "pyloop/rt/reactor.hpp"

using namespace pyloop::rt;

namespace {

struct SocketPair {
  int a = -1, b = -1;
  SocketPair() {
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) == 0) {
      a = fds[0];
      b = fds[1];
    }
  }
  ~SocketPair() {
    close(a);
    close(b);
  }
};

}  // namespace

TEST(reactor_reports_readable_with_token) {
  auto reactor = make_epoll_reactor();
  SocketPair p;
  CHECK(reactor->add(p.a, readable, 42) == 0);
  ReadyEvent ev[4];
  CHECK(reactor->wait(ev, 0) == 0);  // nothing to read yet
  CHECK(write(p.b, "x", 1) == 1);
  int n = reactor->wait(ev, 1.0);
  CHECK(n == 1);
  CHECK(ev[0].token == 42);
  CHECK(ev[0].ready & readable);
}

TEST(reactor_is_level_triggered) {
  auto reactor = make_epoll_reactor();
  SocketPair p;
  CHECK(reactor->add(p.a, readable, 1) == 0);
  CHECK(write(p.b, "xy", 2) == 2);
  ReadyEvent ev[4];
  CHECK(reactor->wait(ev, 1.0) == 1);
  CHECK(reactor->wait(ev, 1.0) == 1);  // still unread: reported again
  char buf[4];
  CHECK(read(p.a, buf, sizeof buf) == 2);
  CHECK(reactor->wait(ev, 0) == 0);
}

TEST(reactor_modify_and_remove) {
  auto reactor = make_epoll_reactor();
  SocketPair p;
  CHECK(reactor->add(p.a, 0, 7) == 0);
  ReadyEvent ev[4];
  CHECK(reactor->wait(ev, 0) == 0);
  CHECK(reactor->modify(p.a, writable, 8) == 0);
  CHECK(reactor->wait(ev, 1.0) == 1);
  CHECK(ev[0].token == 8 && (ev[0].ready & writable));
  CHECK(reactor->remove(p.a) == 0);
  CHECK(reactor->wait(ev, 0) == 0);
  CHECK(reactor->remove(p.a) == ENOENT);
}

TEST(reactor_reports_hangup) {
  auto reactor = make_epoll_reactor();
  SocketPair p;
  CHECK(reactor->add(p.a, readable, 3) == 0);
  close(p.b);
  p.b = -1;
  ReadyEvent ev[4];
  CHECK(reactor->wait(ev, 1.0) == 1);
  CHECK(ev[0].ready & (ReadyEvent::hangup | readable));
}
