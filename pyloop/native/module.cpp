// pyloop._native: registers the native types and functions. Nothing else lives
// here; each type is defined in its own file.
#include <pybind11/pybind11.h>

#include <string>

#include "handle.hpp"
#include "loop_core.hpp"
#include "pyloop/rt/io_thread.hpp"
#include "pyloop/rt/log.hpp"
#include "python_calls.hpp"
#include "python_helpers.hpp"
#include "socket_loan.hpp"
#include "transport_core.hpp"
#include "transport_datagram.hpp"

#include <spdlog/version.h>
#include <oneapi/tbb/version.h>

namespace py = pybind11;

namespace {

PyMethodDef raw_functions[] = {
    {"_set_helpers", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(pyloop::py::set_helpers)),
     METH_FASTCALL, "Registers the Python helpers the native code calls on cold paths."},
    {"_make_transport_core", pyloop::py::make_transport_core, METH_O,
     "Makes TransportCore, the native subclass of the given asyncio socket transport class."},
    {"_make_datagram_core", pyloop::py::make_datagram_core, METH_O,
     "Makes DatagramCore, the native subclass of the given asyncio datagram transport class."},
    {nullptr, nullptr, 0, nullptr},
};

py::dict build_config() {
  py::dict config;
  config["version"] = PYLOOP_VERSION;
  config["compiler"] = __VERSION__;
  config["cpp_standard"] = __cplusplus;
  config["pybind11"] = std::to_string(PYBIND11_VERSION_MAJOR) + "." + std::to_string(PYBIND11_VERSION_MINOR) +
                       "." + std::to_string(PYBIND11_VERSION_PATCH);
  config["spdlog"] = std::to_string(SPDLOG_VER_MAJOR) + "." + std::to_string(SPDLOG_VER_MINOR) + "." +
                     std::to_string(SPDLOG_VER_PATCH);
  config["tbb"] = std::string(TBB_VERSION_STRING);
#ifdef Py_GIL_DISABLED
  config["free_threaded"] = true;
#else
  config["free_threaded"] = false;
#endif
#ifdef NDEBUG
  config["assertions"] = false;
#else
  config["assertions"] = true;
#endif
  return config;
}

}  // namespace

PYBIND11_MODULE(_native, m, py::mod_gil_not_used()) {
  m.doc() = "pyloop's native core";
  if (pyloop::py::register_handle_types(m.ptr()) < 0 || pyloop::py::register_loop_core(m.ptr()) < 0 ||
      pyloop::py::register_transport_core(m.ptr()) < 0 || pyloop::py::register_datagram_core(m.ptr()) < 0 ||
      pyloop::py::register_socket_loan(m.ptr()) < 0 || pyloop::py::register_python_calls(m.ptr()) < 0 || PyModule_AddFunctions(m.ptr(), raw_functions) < 0)
    throw py::error_already_set();
  m.def("build_config", &build_config, "Versions and options this extension was built with.");
  m.def(
      "io_stats",
      [] {
        auto& threads = pyloop::rt::IoThreads::shared();
        py::dict stats;
        stats["threads"] = threads.count();
        stats["reads"] = threads.reads();
        stats["loaned_reads"] = threads.loaned_reads();
        stats["sends"] = threads.sends();
        return stats;
      },
      "The process's I/O threads: how many (PYLOOP_IO_THREADS), the chunks they have read (into buffers "
      "their loops lent: loaned_reads) and the sends they made.");
  m.def(
      "_forget_io_threads",
      [] {
        if (pyloop::rt::IoThreads::made()) pyloop::rt::IoThreads::shared().forget_after_fork();
      },
      "In a forked child: its parent's I/O threads are gone, so no socket is shared with one.");
  m.def("configure_logging", &pyloop::rt::log::configure, py::arg("spec"),
        "Sets spdlog levels, in PYLOOP_LOG's syntax (e.g. 'debug' or 'warn,pyloop.loop=trace').");
}
