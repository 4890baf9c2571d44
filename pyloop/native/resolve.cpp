// getaddrinfo for pyloop.Loop: the lookup runs on the native Executor without
// the interpreter; its result comes back through the loop's inbox and is
// turned into socket.getaddrinfo's tuples here, on the loop thread.
#include <arpa/inet.h>
#include <netdb.h>

#include "loop_core.hpp"
#include "loop_state.hpp"
#include "pyloop/rt/resolver.hpp"

namespace pyloop::py {

namespace {

int optional_bytes(PyObject* obj, std::optional<std::string>* out) {
  if (obj == Py_None) return 0;
  if (!PyBytes_Check(obj)) {
    PyErr_SetString(PyExc_TypeError, "_resolve() host and port must be bytes or None");
    return -1;
  }
  *out = std::string(PyBytes_AS_STRING(obj), static_cast<std::size_t>(PyBytes_GET_SIZE(obj)));
  return 0;
}

int int_argument(PyObject* obj, int* out) {
  long v = PyLong_AsLong(obj);
  if (v == -1 && PyErr_Occurred()) return -1;
  if (v < INT_MIN || v > INT_MAX) {
    PyErr_SetString(PyExc_OverflowError, "signed integer is greater than maximum");
    return -1;
  }
  *out = static_cast<int>(v);
  return 0;
}

// The socket module's form of an address: (host, port) for IPv4,
// (host, port, flowinfo, scope_id) for IPv6, host as getnameinfo prints it.
PyObject* sockaddr_tuple(const rt::ResolvedAddress& a) {
  char host[NI_MAXHOST];
  const auto* sa = reinterpret_cast<const sockaddr*>(&a.address);
  if (a.family == AF_INET || a.family == AF_INET6) {
    int err = getnameinfo(sa, a.address_length, host, sizeof host, nullptr, 0, NI_NUMERICHOST);
    if (err) {
      PyErr_SetString(PyExc_OSError, gai_strerror(err));
      return nullptr;
    }
  }
  if (a.family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    return Py_BuildValue("(si)", host, ntohs(in->sin_port));
  }
  if (a.family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
    return Py_BuildValue("(siII)", host, ntohs(in6->sin6_port), ntohl(in6->sin6_flowinfo), in6->sin6_scope_id);
  }
  return Py_BuildValue("(iy#)", a.family, reinterpret_cast<const char*>(&a.address),
                       static_cast<Py_ssize_t>(a.address_length));
}

PyObject* result_list(const rt::ResolveResult& r) {
  PyObject* list = PyList_New(0);
  if (!list) return nullptr;
  for (const auto& a : r.addresses) {
    PyObject* addr = sockaddr_tuple(a);
    PyObject* item = addr ? Py_BuildValue("(iiisN)", a.family, a.socktype, a.protocol, a.canonname.c_str(), addr)
                          : nullptr;
    if (!item || PyList_Append(list, item) < 0) {
      Py_XDECREF(item);
      Py_DECREF(list);
      return nullptr;
    }
    Py_DECREF(item);
  }
  return list;
}

// The exception socket.getaddrinfo would raise for this failure.
PyObject* resolve_error(const rt::ResolveResult& r) {
  if (r.gai_error == EAI_SYSTEM) {
    errno = r.sys_errno;
    PyErr_SetFromErrno(PyExc_OSError);
  } else {
    PyObject* socket = PyImport_ImportModule("socket");
    PyObject* gaierror = socket ? PyObject_GetAttrString(socket, "gaierror") : nullptr;
    Py_XDECREF(socket);
    if (!gaierror) return nullptr;
    PyObject* exc = PyObject_CallFunction(gaierror, "is", r.gai_error, gai_strerror(r.gai_error));
    Py_DECREF(gaierror);
    return exc;
  }
  return PyErr_GetRaisedException();
}

// future.set_result(value) unless the future is done (cancelled, typically).
int settle(PyObject* future, const char* method, PyObject* value) {
  PyObject* done = PyObject_CallMethod(future, "done", nullptr);
  if (!done) return -1;
  int is_done = PyObject_IsTrue(done);
  Py_DECREF(done);
  if (is_done) return is_done < 0 ? -1 : 0;
  PyObject* r = PyObject_CallMethod(future, method, "O", value);
  Py_XDECREF(r);
  return r ? 0 : -1;
}

}  // namespace

PyObject* loop_resolve(LoopCoreObject* self, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 6) {
    PyErr_SetString(PyExc_TypeError, "_resolve() takes 6 arguments");
    return nullptr;
  }
  rt::ResolveRequest request;
  if (optional_bytes(args[0], &request.host) < 0 || optional_bytes(args[1], &request.port) < 0 ||
      int_argument(args[2], &request.family) < 0 || int_argument(args[3], &request.socktype) < 0 ||
      int_argument(args[4], &request.protocol) < 0 || int_argument(args[5], &request.flags) < 0 ||
      check_closed(self) < 0)
    return nullptr;
  PyObject* future = PyObject_CallMethod(reinterpret_cast<PyObject*>(self), "create_future", nullptr);
  if (!future) return nullptr;
  LoopState& s = *self->state;
  std::uint64_t id = s.next_completion_id++;
  try {
    s.pending.emplace(id, Py_NewRef(future));
    rt::resolve(s.inbox, id, std::move(request));
  } catch (const std::exception& e) {
    if (auto it = s.pending.find(id); it != s.pending.end()) {
      Py_DECREF(it->second);
      s.pending.erase(it);
    }
    Py_DECREF(future);
    PyErr_SetString(PyExc_RuntimeError, e.what());
    return nullptr;
  }
  return future;
}

int deliver_completions(LoopCoreObject* self) {
  LoopState& s = *self->state;
  int rc = 0;
  s.inbox->drain([&](std::unique_ptr<rt::Completion> c) {
    auto it = s.pending.find(c->id);
    if (it == s.pending.end() || rc < 0) return;
    PyObject* future = it->second;
    s.pending.erase(it);
    if (auto* r = dynamic_cast<rt::ResolveResult*>(c.get())) {
      PyObject* value = r->gai_error ? resolve_error(*r) : result_list(*r);
      const char* method = r->gai_error ? "set_exception" : "set_result";
      if (!value) {
        // Building the result failed: the future gets that error instead.
        value = PyErr_GetRaisedException();
        method = "set_exception";
      }
      if (settle(future, method, value) < 0) rc = -1;
      Py_DECREF(value);
    }
    Py_DECREF(future);
  });
  return rc;
}

void clear_pending(LoopCoreObject* self) {
  auto pending = std::move(self->state->pending);
  self->state->pending.clear();
  for (auto& [id, future] : pending) Py_DECREF(future);
}

}  // namespace pyloop::py
