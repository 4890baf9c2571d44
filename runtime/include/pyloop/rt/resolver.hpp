// getaddrinfo off the loop thread: the call runs on the Executor and its
// result comes back to the loop's Inbox as a ResolveResult.
//
// Threading: resolve() from the loop thread; the result is posted from a pool
// thread. No Python object is touched off the loop thread.
#pragma once

#include <netdb.h>
#include <sys/socket.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "pyloop/rt/inbox.hpp"

namespace pyloop::rt {

struct ResolvedAddress {
  int family;
  int socktype;
  int protocol;
  std::string canonname;
  sockaddr_storage address;
  socklen_t address_length;
};

struct ResolveResult : Completion {
  int gai_error = 0;   // getaddrinfo's return value
  int sys_errno = 0;   // errno, when gai_error is EAI_SYSTEM
  std::vector<ResolvedAddress> addresses;
};

struct ResolveRequest {
  std::optional<std::string> host;  // already IDNA-encoded
  std::optional<std::string> port;
  int family = 0;
  int socktype = 0;
  int protocol = 0;
  int flags = 0;
};

// Resolves on the shared Executor, then posts a ResolveResult tagged `id`.
void resolve(std::shared_ptr<Inbox> inbox, std::uint64_t id, ResolveRequest request);

}  // namespace pyloop::rt
