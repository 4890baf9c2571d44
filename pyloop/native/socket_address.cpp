// See socket_address.hpp.
#include "socket_address.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstdint>
#include <cstdio>
#include <cstring>

namespace pyloop::py {

namespace {

// inet_ntop's text for an IPv4 address, without its sprintf.
std::size_t format_ipv4(const in_addr& addr, char* out) {
  const auto* b = reinterpret_cast<const unsigned char*>(&addr);
  char* p = out;
  for (int i = 0; i < 4; ++i) {
    if (i) *p++ = '.';
    unsigned v = b[i];
    if (v >= 100) *p++ = static_cast<char>('0' + v / 100);
    if (v >= 10) *p++ = static_cast<char>('0' + v / 10 % 10);
    *p++ = static_cast<char>('0' + v % 10);
  }
  return static_cast<std::size_t>(p - out);
}

// The host string for these address bytes, from the cache when they repeat.
PyObject* host_string(AddressCache& cache, int family, const void* bytes, std::size_t size) {
  // One transport's socket has one family, so the bytes alone identify the host.
  if (cache.host && std::memcmp(cache.host_bytes, bytes, size) == 0) return Py_NewRef(cache.host);
  char text[INET6_ADDRSTRLEN];
  std::size_t length;
  if (family == AF_INET) {
    length = format_ipv4(*static_cast<const in_addr*>(bytes), text);
  } else {
    if (!inet_ntop(AF_INET6, bytes, text, sizeof text)) return PyErr_SetFromErrno(PyExc_OSError);
    length = std::strlen(text);
  }
  PyObject* host = PyUnicode_FromStringAndSize(text, static_cast<Py_ssize_t>(length));
  if (!host) return nullptr;
  Py_XSETREF(cache.host, Py_NewRef(host));
  std::memset(cache.host_bytes, 0, sizeof cache.host_bytes);
  std::memcpy(cache.host_bytes, bytes, size);
  return host;
}

}  // namespace

PyObject* address_tuple(AddressCache& cache, const sockaddr_storage& sa, socklen_t len) {
  if (cache.peer && cache.peer_len == len && std::memcmp(&cache.peer_sockaddr, &sa, len) == 0)
    return Py_NewRef(cache.peer);
  PyObject* address;
  if (sa.ss_family == AF_INET) {
    const auto& in = reinterpret_cast<const sockaddr_in&>(sa);
    PyObject* host = host_string(cache, AF_INET, &in.sin_addr, 4);
    PyObject* port = host ? PyLong_FromLong(ntohs(in.sin_port)) : nullptr;
    address = port ? PyTuple_Pack(2, host, port) : nullptr;
    Py_XDECREF(host);
    Py_XDECREF(port);
  } else {
    const auto& in6 = reinterpret_cast<const sockaddr_in6&>(sa);
    PyObject* host = host_string(cache, AF_INET6, &in6.sin6_addr, 16);
    address = host ? Py_BuildValue("(NiII)", host, ntohs(in6.sin6_port), ntohl(in6.sin6_flowinfo),
                                   in6.sin6_scope_id)
                   : nullptr;
  }
  if (!address) return nullptr;
  Py_XSETREF(cache.peer, Py_NewRef(address));
  std::memcpy(&cache.peer_sockaddr, &sa, len);
  cache.peer_len = len;
  return address;
}

bool numeric_sockaddr(const AddressCache& cache, int family, PyObject* addr, sockaddr_storage* sa, socklen_t* len) {
  if (addr == cache.peer && addr) {  // answering the last sender
    std::memcpy(sa, &cache.peer_sockaddr, cache.peer_len);
    *len = cache.peer_len;
    return true;
  }
  if (!PyTuple_CheckExact(addr) || PyTuple_GET_SIZE(addr) != 2) return false;
  PyObject* host = PyTuple_GET_ITEM(addr, 0);
  PyObject* port = PyTuple_GET_ITEM(addr, 1);
  if (!PyUnicode_CheckExact(host) || !PyLong_CheckExact(port)) return false;
  const char* text = PyUnicode_AsUTF8(host);
  long number = PyLong_AsLong(port);
  if (!text || number < 0 || number > 65535) {
    PyErr_Clear();
    return false;
  }
  std::memset(sa, 0, sizeof *sa);
  auto port_bytes = htons(static_cast<std::uint16_t>(number));
  if (family == AF_INET) {
    auto* in = reinterpret_cast<sockaddr_in*>(sa);
    in->sin_family = AF_INET;
    in->sin_port = port_bytes;
    *len = sizeof *in;
    return inet_pton(AF_INET, text, &in->sin_addr) == 1;
  }
  auto* in6 = reinterpret_cast<sockaddr_in6*>(sa);
  in6->sin6_family = AF_INET6;
  in6->sin6_port = port_bytes;
  *len = sizeof *in6;
  return inet_pton(AF_INET6, text, &in6->sin6_addr) == 1;
}

}  // namespace pyloop::py
