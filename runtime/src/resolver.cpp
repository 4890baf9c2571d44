#include "pyloop/rt/resolver.hpp"

#include <cerrno>
#include <cstring>

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

}  // namespace

void resolve(std::shared_ptr<Inbox> inbox, std::uint64_t id, ResolveRequest request) {
  Executor::shared().submit([inbox = std::move(inbox), id, request = std::move(request)] {
    auto result = run_getaddrinfo(request);
    result->id = id;
    inbox->post(std::move(result));
  });
}

}  // namespace pyloop::rt
