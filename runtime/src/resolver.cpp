#include "pyloop/rt/resolver.hpp"

#include <cerrno>
#include <cstring>
#include <string>

#include <arpa/inet.h>

#include "pyloop/rt/executor.hpp"

namespace pyloop::rt {

namespace {

std::unique_ptr<ResolveResult> run_getaddrinfo(const ResolveRequest& r) {
  auto result = std::make_unique<ResolveResult>();
  addrinfo hints{};
  hints.ai_family = r.family;
  hints.ai_socktype = r.socktype;
  hints.ai_protocol = r.protocol;
  hints.ai_flags = r.flags;
  addrinfo* list = nullptr;
  int err = getaddrinfo(r.host ? r.host->c_str() : nullptr, r.port ? r.port->c_str() : nullptr, &hints, &list);
  if (err != 0) {
    result->gai_error = err;
    result->sys_errno = errno;
    return result;
  }
  for (addrinfo* ai = list; ai; ai = ai->ai_next) {
    ResolvedAddress a{};
    a.family = ai->ai_family;
    a.socktype = ai->ai_socktype;
    a.protocol = ai->ai_protocol;
    if (ai->ai_canonname) a.canonname = ai->ai_canonname;
    a.address_length = std::min<socklen_t>(ai->ai_addrlen, sizeof a.address);
    std::memcpy(&a.address, ai->ai_addr, a.address_length);
    result->addresses.push_back(a);
  }
  freeaddrinfo(list);
  return result;
}

std::unique_ptr<NameInfoResult> run_getnameinfo(const NameInfoRequest& r) {
  auto result = std::make_unique<NameInfoResult>();
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;  // any type that makes a numeric port valid
  hints.ai_flags = AI_NUMERICHOST;  // no name resolution for the address itself
  std::string port = std::to_string(r.port);
  addrinfo* res = nullptr;
  if (int err = getaddrinfo(r.host.c_str(), port.c_str(), &hints, &res)) {
    result->gai_error = err;
    result->sys_errno = errno;
    return result;
  }
  std::unique_ptr<addrinfo, void (*)(addrinfo*)> owned(res, freeaddrinfo);
  if (res->ai_next) {
    result->os_error = "sockaddr resolved to multiple addresses";
    return result;
  }
  if (res->ai_family == AF_INET && !r.ipv4_form) {
    result->os_error = "IPv4 sockaddr must be 2 tuple";
    return result;
  }
  if (res->ai_family == AF_INET6) {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(res->ai_addr);
    sin6->sin6_flowinfo = htonl(r.flowinfo);
    sin6->sin6_scope_id = r.scope_id;
  }
  char host[NI_MAXHOST];
  char service[NI_MAXSERV];
  if (int err = getnameinfo(res->ai_addr, res->ai_addrlen, host, sizeof host, service, sizeof service, r.flags)) {
    result->gai_error = err;
    result->sys_errno = errno;
    return result;
  }
  result->host = host;
  result->service = service;
  return result;
}

}  // namespace

void name_info(std::shared_ptr<Inbox> inbox, std::uint64_t id, NameInfoRequest request) {
  Executor::shared().submit([inbox = std::move(inbox), id, request = std::move(request)] {
    auto result = run_getnameinfo(request);
    result->id = id;
    inbox->post(std::move(result));
  });
}

void resolve(std::shared_ptr<Inbox> inbox, std::uint64_t id, ResolveRequest request) {
  Executor::shared().submit([inbox = std::move(inbox), id, request = std::move(request)] {
    auto result = run_getaddrinfo(request);
    result->id = id;
    inbox->post(std::move(result));
  });
}

}  // namespace pyloop::rt
