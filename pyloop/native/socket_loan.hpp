// Module functions that lend a socket to an I/O thread for sock_sendfile()
// (see socket_loan.cpp). Threading: the loop thread's.
#pragma once

#include <Python.h>

namespace pyloop::py {

int register_socket_loan(PyObject* module);

}  // namespace pyloop::py
