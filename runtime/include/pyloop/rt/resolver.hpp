// getaddrinfo and getnameinfo off the loop thread: the calls run on the
// Executor and their results come back to the loop's Inbox as a
// ResolveResult or a NameInfoResult.
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

// socket.getnameinfo's steps: the numeric host and port are turned into a
// sockaddr with getaddrinfo(AI_NUMERICHOST), then looked up.
struct NameInfoRequest {
  std::string host;
  int port = 0;
  unsigned flowinfo = 0;
  unsigned scope_id = 0;
  bool ipv4_form = true;  // the Python sockaddr was a 2-tuple
  int flags = 0;
};

struct NameInfoResult : Completion {
  int gai_error = 0;
  int sys_errno = 0;
  const char* os_error = nullptr;  // a fixed message for OSError, as socket.getnameinfo raises
  std::string host;
  std::string service;
};

void name_info(std::shared_ptr<Inbox> inbox, std::uint64_t id, NameInfoRequest request);

}  // namespace pyloop::rt
