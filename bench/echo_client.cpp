// A load client for echo servers: N connections, each sending a fixed-size
// message and waiting for the whole echo before sending the next, all from
// one thread with epoll, so that it spends little CPU per request. Prints one
// JSON object: requests, seconds, requests per second and latency
// percentiles in microseconds (measured from the first byte written to the
// last byte of the echo read) over the measured window, and all_requests /
// all_seconds including the warm-up (the window a caller can time from outside).
//
//   echo_client --port P [--host 127.0.0.1] [--conns 1] [--size 1024]
//               [--duration 2] [--warmup 0.5]
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string host = "127.0.0.1";
  int port = 0;
  int conns = 1;
  std::size_t size = 1024;
  double duration = 2.0;
  double warmup = 0.5;
};

struct Connection {
  int fd = -1;
  std::size_t sent = 0;      // bytes of the current message written
  std::size_t received = 0;  // bytes of its echo read
  Clock::time_point started;
};

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "echo_client: %s: %s\n", what, std::strerror(errno));
  std::exit(1);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string key = argv[i];
    const char* value = argv[i + 1];
    if (key == "--host") o.host = value;
    else if (key == "--port") o.port = std::atoi(value);
    else if (key == "--conns") o.conns = std::atoi(value);
    else if (key == "--size") o.size = std::strtoul(value, nullptr, 10);
    else if (key == "--duration") o.duration = std::atof(value);
    else if (key == "--warmup") o.warmup = std::atof(value);
    else {
      std::fprintf(stderr, "echo_client: unknown option %s\n", key.c_str());
      std::exit(2);
    }
  }
  if (o.port <= 0 || o.conns <= 0 || o.size == 0 || o.duration <= 0) {
    std::fprintf(stderr, "echo_client: --port, --conns, --size and --duration must be positive\n");
    std::exit(2);
  }
  return o;
}

int connect_to(const Options& o) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) fail("socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(o.port));
  if (inet_pton(AF_INET, o.host.c_str(), &addr.sin_addr) != 1) fail("inet_pton");
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) fail("connect");
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) fail("fcntl");
  return fd;
}

double percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0.0;
  auto i = static_cast<std::size_t>(p * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[std::min(i, sorted.size() - 1)];
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse(argc, argv);
  std::vector<char> message(o.size, 'x');
  std::vector<char> sink(std::max<std::size_t>(o.size, 65536));
  std::vector<Connection> conns(static_cast<std::size_t>(o.conns));
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) fail("epoll_create1");

  // Writes what it can of the current message; EPOLLOUT is watched only while
  // a message is partly written.
  auto pump_send = [&](std::size_t i) {
    Connection& c = conns[i];
    while (c.sent < o.size) {
      ssize_t n = send(c.fd, message.data() + c.sent, o.size - c.sent, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EAGAIN) break;
        fail("send");
      }
      c.sent += static_cast<std::size_t>(n);
    }
    epoll_event ev{};
    ev.events = EPOLLIN | (c.sent < o.size ? EPOLLOUT : 0u);
    ev.data.u64 = i;
    epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &ev);
  };
  auto start_message = [&](std::size_t i) {
    conns[i].sent = 0;
    conns[i].received = 0;
    conns[i].started = Clock::now();
    pump_send(i);
  };

  for (std::size_t i = 0; i < conns.size(); ++i) {
    conns[i].fd = connect_to(o);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = i;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev) < 0) fail("epoll_ctl");
  }

  std::vector<double> latencies_us;
  latencies_us.reserve(1 << 20);
  auto begin = Clock::now();
  auto measure_from = begin + std::chrono::duration<double>(o.warmup);
  auto end = measure_from + std::chrono::duration<double>(o.duration);
  std::uint64_t requests = 0;
  std::uint64_t all_requests = 0;  // warm-up included, for CPU time per request
  for (std::size_t i = 0; i < conns.size(); ++i) start_message(i);

  epoll_event events[256];
  for (;;) {
    auto now = Clock::now();
    if (now >= end) break;
    int ms = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(end - now).count()) + 1;
    int n = epoll_wait(ep, events, 256, ms);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("epoll_wait");
    }
    for (int k = 0; k < n; ++k) {
      std::size_t i = events[k].data.u64;
      Connection& c = conns[i];
      if (events[k].events & EPOLLOUT) pump_send(i);
      if (!(events[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) continue;
      for (;;) {
        ssize_t r = recv(c.fd, sink.data(), sink.size(), 0);
        if (r < 0) {
          if (errno == EAGAIN) break;
          fail("recv");
        }
        if (r == 0) {
          std::fprintf(stderr, "echo_client: server closed a connection\n");
          return 1;
        }
        c.received += static_cast<std::size_t>(r);
        if (c.received >= o.size) {
          auto done = Clock::now();
          ++all_requests;
          if (done >= measure_from) {
            latencies_us.push_back(std::chrono::duration<double, std::micro>(done - c.started).count());
            ++requests;
          }
          start_message(i);
          break;
        }
      }
    }
  }
  double seconds = std::chrono::duration<double>(Clock::now() - measure_from).count();
  double all_seconds = std::chrono::duration<double>(Clock::now() - begin).count();
  std::sort(latencies_us.begin(), latencies_us.end());
  double mean = 0;
  for (double v : latencies_us) mean += v;
  if (!latencies_us.empty()) mean /= static_cast<double>(latencies_us.size());
  std::printf(
      "{\"requests\": %llu, \"seconds\": %.6f, \"rps\": %.1f, \"lat_us\": {\"mean\": %.2f, \"p50\": %.2f, "
      "\"p90\": %.2f, \"p99\": %.2f, \"max\": %.2f}, \"all_requests\": %llu, \"all_seconds\": %.6f}\n",
      static_cast<unsigned long long>(requests), seconds, static_cast<double>(requests) / seconds, mean,
      percentile(latencies_us, 0.50), percentile(latencies_us, 0.90), percentile(latencies_us, 0.99),
      latencies_us.empty() ? 0.0 : latencies_us.back(), static_cast<unsigned long long>(all_requests), all_seconds);
  for (auto& c : conns) close(c.fd);
  close(ep);
  return 0;
}
