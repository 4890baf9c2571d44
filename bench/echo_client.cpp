// A load client for echo servers: N connections, each sending a fixed-size
// message and waiting for the whole echo before sending the next, all from
// one thread with epoll, so that it spends little CPU per request. Prints one
// JSON object: requests, seconds, requests per second and latency
// percentiles in microseconds (measured from the first byte written to the
// last byte of the echo read) over the measured window, and all_requests /
// all_seconds including the warm-up (the window a caller can time from outside).
//
//   echo_client --port P [--host 127.0.0.1] [--conns 1] [--size 1024]
//               [--duration 2] [--warmup 0.5] [--transport tcp|tls|udp]
//   echo_client --stats < FILE   (the latency summary of the microsecond
//                                 values in FILE, one per line)
//
// tls: OpenSSL over TCP; each connection's handshake is done before the run
// and the server's certificate is not verified (benchmark servers use a
// self-signed one). udp: one connected datagram socket per connection, one
// datagram per message, echoed as one datagram. A connection left waiting
// for its echo for over a second when the run ends fails it, so a lost
// datagram or a stalled server is reported, never averaged away; so does a
// run in which the server echoed nothing at all.
//
// Build: g++ -O2 -std=c++20 echo_client.cpp -o echo_client -lssl -lcrypto
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
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
#include <iostream>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

enum class Transport { tcp, tls, udp };

constexpr std::size_t kMaxDatagram = 65507;  // IPv4's largest UDP payload

struct Options {
  std::string host = "127.0.0.1";
  int port = 0;
  int conns = 1;
  std::size_t size = 1024;
  double duration = 2.0;
  double warmup = 0.5;
  Transport transport = Transport::tcp;
};

struct Connection {
  int fd = -1;
  SSL* ssl = nullptr;        // tls only
  std::size_t sent = 0;      // bytes of the current message written
  std::size_t received = 0;  // bytes of its echo read
  Clock::time_point started;
};

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "echo_client: %s: %s\n", what, std::strerror(errno));
  std::exit(1);
}

[[noreturn]] void fail_tls(const char* what) {
  std::fprintf(stderr, "echo_client: %s: ", what);
  ERR_print_errors_fp(stderr);
  std::fprintf(stderr, "\n");
  std::exit(1);
}

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr, "echo_client: %s\n", why);
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string key = argv[i];
    std::string value = argv[i + 1];
    if (key == "--host") o.host = value;
    else if (key == "--port") o.port = std::atoi(value.c_str());
    else if (key == "--conns") o.conns = std::atoi(value.c_str());
    else if (key == "--size") o.size = std::strtoul(value.c_str(), nullptr, 10);
    else if (key == "--duration") o.duration = std::atof(value.c_str());
    else if (key == "--warmup") o.warmup = std::atof(value.c_str());
    else if (key == "--transport" && value == "tcp") o.transport = Transport::tcp;
    else if (key == "--transport" && value == "tls") o.transport = Transport::tls;
    else if (key == "--transport" && value == "udp") o.transport = Transport::udp;
    else usage(("unknown option " + key + " " + value).c_str());
  }
  if (o.port <= 0 || o.conns <= 0 || o.size == 0 || o.duration <= 0) {
    usage("--port, --conns, --size and --duration must be positive");
  }
  if (o.transport == Transport::udp && o.size > kMaxDatagram) usage("--size is over a datagram's 65507 bytes");
  return o;
}

int connect_to(const Options& o) {
  bool udp = o.transport == Transport::udp;
  int fd = socket(AF_INET, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
  if (fd < 0) fail("socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(o.port));
  if (inet_pton(AF_INET, o.host.c_str(), &addr.sin_addr) != 1) fail("inet_pton");
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) fail("connect");
  if (!udp) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  return fd;
}

void set_nonblocking(int fd) {
  if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) fail("fcntl");
}

SSL_CTX* make_tls_context() {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == nullptr) fail_tls("SSL_CTX_new");
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  return ctx;
}

// Handshakes on the still-blocking socket, so the run measures echoes only.
SSL* start_tls(SSL_CTX* ctx, int fd) {
  SSL* ssl = SSL_new(ctx);
  if (ssl == nullptr || SSL_set_fd(ssl, fd) != 1) fail_tls("SSL_new");
  if (SSL_connect(ssl) != 1) fail_tls("TLS handshake");
  return ssl;
}

// A TLS call's result as a plain socket call's: bytes, 0 at the peer's
// close, or -1 with errno EAGAIN when it must wait for the socket.
ssize_t tls_result(SSL* ssl, int n) {
  if (n > 0) return n;
  switch (SSL_get_error(ssl, n)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE: errno = EAGAIN; return -1;
    case SSL_ERROR_ZERO_RETURN: return 0;
    default: fail_tls("TLS read or write");
  }
}

ssize_t send_some(const Connection& c, const char* data, std::size_t n) {
  if (c.ssl != nullptr) return tls_result(c.ssl, SSL_write(c.ssl, data, static_cast<int>(n)));
  return send(c.fd, data, n, MSG_NOSIGNAL);
}

ssize_t recv_some(const Connection& c, char* data, std::size_t n) {
  if (c.ssl != nullptr) return tls_result(c.ssl, SSL_read(c.ssl, data, static_cast<int>(n)));
  return recv(c.fd, data, n, 0);
}

double percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0.0;
  auto i = static_cast<std::size_t>(p * static_cast<double>(sorted.size() - 1) + 0.5);
  return sorted[std::min(i, sorted.size() - 1)];
}

// The "lat_us" JSON object for these latencies (sorted in place).
std::string latency_json(std::vector<double>& latencies_us) {
  std::sort(latencies_us.begin(), latencies_us.end());
  double mean = 0;
  for (double v : latencies_us) mean += v;
  if (!latencies_us.empty()) mean /= static_cast<double>(latencies_us.size());
  char text[256];
  std::snprintf(text, sizeof text, "{\"mean\": %.2f, \"p50\": %.2f, \"p90\": %.2f, \"p99\": %.2f, \"max\": %.2f}",
                mean, percentile(latencies_us, 0.50), percentile(latencies_us, 0.90),
                percentile(latencies_us, 0.99), latencies_us.empty() ? 0.0 : latencies_us.back());
  return text;
}

int print_stats_of_stdin() {
  std::vector<double> values;
  for (double v; std::cin >> v;) values.push_back(v);
  if (!std::cin.eof()) usage("--stats reads numbers only");
  std::printf("{\"count\": %zu, \"lat_us\": %s}\n", values.size(), latency_json(values).c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::string(argv[1]) == "--stats") return print_stats_of_stdin();
  Options o = parse(argc, argv);
  std::vector<char> message(o.size, 'x');
  std::vector<char> sink(std::max<std::size_t>(o.size, 65536));
  std::vector<Connection> conns(static_cast<std::size_t>(o.conns));
  SSL_CTX* tls = o.transport == Transport::tls ? make_tls_context() : nullptr;
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) fail("epoll_create1");

  // Writes what it can of the current message; EPOLLOUT is watched only while
  // a message is partly written.
  auto pump_send = [&](std::size_t i) {
    Connection& c = conns[i];
    while (c.sent < o.size) {
      ssize_t n = send_some(c, message.data() + c.sent, o.size - c.sent);
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
    Connection& c = conns[i];
    c.fd = connect_to(o);
    if (tls != nullptr) c.ssl = start_tls(tls, c.fd);
    set_nonblocking(c.fd);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = i;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev) < 0) fail("epoll_ctl");
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
      // A TLS write can wait on a read too, so any event retries a partial write.
      if (c.sent < o.size) pump_send(i);
      if (!(events[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) continue;
      for (;;) {
        ssize_t r = recv_some(c, sink.data(), sink.size());
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
  auto stop = Clock::now();
  if (all_requests == 0) {
    std::fprintf(stderr, "echo_client: the server echoed nothing\n");
    return 1;
  }
  for (const auto& c : conns) {
    if (stop - c.started > std::chrono::seconds(1)) {
      std::fprintf(stderr, "echo_client: a connection got no echo for over a second (%zu of %zu bytes)\n",
                   c.received, o.size);
      return 1;
    }
  }
  double seconds = std::chrono::duration<double>(stop - measure_from).count();
  double all_seconds = std::chrono::duration<double>(stop - begin).count();
  std::printf("{\"requests\": %llu, \"seconds\": %.6f, \"rps\": %.1f, \"lat_us\": %s, \"all_requests\": %llu, "
              "\"all_seconds\": %.6f}\n",
              static_cast<unsigned long long>(requests), seconds, static_cast<double>(requests) / seconds,
              latency_json(latencies_us).c_str(), static_cast<unsigned long long>(all_requests), all_seconds);
  for (auto& c : conns) {
    SSL_free(c.ssl);
    close(c.fd);
  }
  SSL_CTX_free(tls);
  close(ep);
  return 0;
}
