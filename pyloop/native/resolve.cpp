// getaddrinfo and getnameinfo for pyloop.Loop: the lookups run on the native
// Executor without the interpreter; their results come back through the
// loop's inbox and are turned into the socket module's values (and errors)
// here, on the loop thread.
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

// The exception the socket module raises for a getaddrinfo/getnameinfo failure.
PyObject* gai_exception(int gai_error, int sys_errno) {
  if (gai_error == EAI_SYSTEM) {
    errno = sys_errno;
    PyErr_SetFromErrno(PyExc_OSError);
    return PyErr_GetRaisedException();
  }
  PyObject* socket = PyImport_ImportModule("socket");
  PyObject* gaierror = socket ? PyObject_GetAttrString(socket, "gaierror") : nullptr;
  Py_XDECREF(socket);
  if (!gaierror) return nullptr;
  PyObject* exc = PyObject_CallFunction(gaierror, "is", gai_error, gai_strerror(gai_error));
  Py_DECREF(gaierror);
  return exc;
}

// (value, "set_result") or (exception, "set_exception") for a completion.
PyObject* outcome(rt::Completion& c, const char** method) {
  *method = "set_exception";
  if (auto* r = dynamic_cast<rt::ResolveResult*>(&c)) {
    if (r->gai_error) return gai_exception(r->gai_error, r->sys_errno);
    *method = "set_result";
    return result_list(*r);
  }
  if (auto* n = dynamic_cast<rt::NameInfoResult*>(&c)) {
    if (n->gai_error) return gai_exception(n->gai_error, n->sys_errno);
    if (n->os_error) return PyObject_CallFunction(PyExc_OSError, "s", n->os_error);
    *method = "set_result";
    return Py_BuildValue("(ss)", n->host.c_str(), n->service.c_str());
  }
  PyErr_SetString(PyExc_SystemError, "unknown completion");
  return nullptr;
}

// Registers a new future for a completion id; returns it, or nullptr.
PyObject* new_pending(LoopCoreObject* self, std::uint64_t* id) {
  if (check_closed(self) < 0) return nullptr;
  PyObject* future = PyObject_CallMethod(reinterpret_cast<PyObject*>(self), "create_future", nullptr);
  if (!future) return nullptr;
  LoopState& s = *self->state;
  *id = s.next_completion_id++;
  s.pending.emplace(*id, Py_NewRef(future));
  return future;
}

// Registers a future, submits the work for it with submit(id), returns the
// future; undoes the registration if the work could not be submitted.
template <class Submit>
PyObject* start(LoopCoreObject* self, Submit&& submit) {
  std::uint64_t id;
  PyObject* future = new_pending(self, &id);
  if (!future) return nullptr;
  try {
    submit(id);
  } catch (const std::exception& e) {
    LoopState& s = *self->state;
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

// future.set_result(value) unless the future is done (cancelled, typically).
int settle(PyObject* future, const char* method, PyObject* value) {
  PyObject* done = PyObject_CallMethod(future, "done", nullptr);  // cold path: one per lookup
  if (!done) return -1;
  int is_done = PyObject_IsTrue(done);
  Py_DECREF(done);
  if (is_done) return is_done < 0 ? -1 : 0;
  // Not PyObject_CallMethod(..., "O", value): a tuple value would be splatted.
  PyObject* name = PyUnicode_FromString(method);
  if (!name) return -1;
  PyObject* r = PyObject_CallMethodOneArg(future, name, value);
  Py_DECREF(name);
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
      int_argument(args[4], &request.protocol) < 0 || int_argument(args[5], &request.flags) < 0)
    return nullptr;
  return start(self, [&](std::uint64_t id) { rt::resolve(self->state->inbox, id, std::move(request)); });
}

PyObject* loop_name_info(LoopCoreObject* self, PyObject* const* args, Py_ssize_t nargs) {
  // _name_info(host: str, port: int, flowinfo: int, scope_id: int, ipv4_form: bool, flags: int);
  // pyloop/_dns.py has checked the sockaddr as socket.getnameinfo does.
  if (nargs != 6 || !PyUnicode_Check(args[0])) {
    PyErr_SetString(PyExc_TypeError, "_name_info() takes (str, int, int, int, bool, int)");
    return nullptr;
  }
  rt::NameInfoRequest request;
  Py_ssize_t size;
  const char* host = PyUnicode_AsUTF8AndSize(args[0], &size);
  if (!host) return nullptr;
  request.host.assign(host, static_cast<std::size_t>(size));
  int flowinfo, scope_id;
  if (int_argument(args[1], &request.port) < 0 || int_argument(args[2], &flowinfo) < 0 ||
      int_argument(args[3], &scope_id) < 0 || int_argument(args[5], &request.flags) < 0)
    return nullptr;
  request.flowinfo = static_cast<unsigned>(flowinfo);
  request.scope_id = static_cast<unsigned>(scope_id);
  request.ipv4_form = PyObject_IsTrue(args[4]) == 1;
  return start(self, [&](std::uint64_t id) { rt::name_info(self->state->inbox, id, std::move(request)); });
}

int settle_completion(LoopCoreObject* self, rt::CompletionPtr c) {
  LoopState& s = *self->state;
  auto it = s.pending.find(c->id);
  if (it == s.pending.end()) return 0;
  PyObject* future = it->second;
  s.pending.erase(it);
  const char* method;
  PyObject* value = outcome(*c, &method);
  if (!value) {
    // Building the result failed: the future gets that error instead.
    value = PyErr_GetRaisedException();
    method = "set_exception";
  }
  int rc = settle(future, method, value);
  Py_DECREF(value);
  Py_DECREF(future);
  return rc;
}

void clear_pending(LoopCoreObject* self) {
  auto pending = std::move(self->state->pending);
  self->state->pending.clear();
  for (auto& [id, future] : pending) Py_DECREF(future);
}

}  // namespace pyloop::py
