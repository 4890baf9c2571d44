// A socket lent to an I/O thread for one loop.sock_sendfile() call: the
// paths a transport uses to have its I/O thread send a file span
// (transport_writes.cpp), for an object that is not a transport. The
// object (pyloop/_sendfile.py, SocketLoan) carries `_loop` and `_sock_fd`,
// a duplicate of the caller's socket fd, and takes the reports in its
// `_io_written`. Threading: the loop thread's.
#include "socket_loan.hpp"

#include "transport_core.hpp"

namespace pyloop::py {

namespace {

bool count_is(Py_ssize_t nargs, Py_ssize_t want, const char* usage) {
  if (nargs == want) return true;
  PyErr_SetString(PyExc_TypeError, usage);
  return false;
}

PyObject* lend_socket(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  if (!count_is(nargs, 2, "_lend_socket(loan, loop)")) return nullptr;
  return attach_stream(args[0], args[1]);
}

PyObject* end_socket_loan(PyObject*, PyObject* loan) { return detach_stream(loan, nullptr); }

PyObject* loan_sendfile(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  if (!count_is(nargs, 4, "_loan_sendfile(loan, fileno, offset, count)")) return nullptr;
  return io_sendfile(args[0], args + 1, 3);
}

PyObject* loan_sendfile_stop(PyObject*, PyObject* loan) { return io_sendfile_stop(loan, nullptr); }

PyMethodDef functions[] = {
    {"_lend_socket", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(lend_socket)), METH_FASTCALL,
     "Lets an I/O thread send on the loan's socket; whether one does."},
    {"_end_socket_loan", end_socket_loan, METH_O, "Takes the loan's socket back from its I/O thread."},
    {"_loan_sendfile", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(loan_sendfile)),
     METH_FASTCALL, "Has the I/O thread send a span of a file on the loan's socket."},
    {"_loan_sendfile_stop", loan_sendfile_stop, METH_O, "Ends that span early."},
    {nullptr, nullptr, 0, nullptr},
};

}  // namespace

int register_socket_loan(PyObject* module) { return PyModule_AddFunctions(module, functions); }

}  // namespace pyloop::py
