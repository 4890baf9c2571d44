// IPv4 and IPv6 socket addresses to and from the socket module's tuples,
// for the datagram transport's per-datagram paths (transport_datagram.cpp).
// Threading: the caller's; an AddressCache belongs to one transport.
#pragma once

#include <Python.h>
#include <sys/socket.h>

namespace pyloop::py {

// The last sender's tuple and host string, reused while they repeat: an
// echo server answers the address it just received, and its clients often
// share one host.
struct AddressCache {
  PyObject* peer;  // the tuple; owned (a member of the transport, so cleared with it)
  PyObject* host;  // its host string; owned likewise
  sockaddr_storage peer_sockaddr;
  socklen_t peer_len;
  unsigned char host_bytes[16];
};

// The socket module's address for an IPv4 or IPv6 sockaddr: (host, port) or
// (host, port, flowinfo, scope_id), as makesockaddr builds it. New reference.
PyObject* address_tuple(AddressCache& cache, const sockaddr_storage& sa, socklen_t len);

// The sockaddr for addr when it is a (host, port) tuple with a numeric host
// of `family` (AF_INET or AF_INET6). false for anything else, which the
// socket module must handle (names, flowinfo and scope_id, errors).
bool numeric_sockaddr(const AddressCache& cache, int family, PyObject* addr, sockaddr_storage* sa, socklen_t* len);

}  // namespace pyloop::py
