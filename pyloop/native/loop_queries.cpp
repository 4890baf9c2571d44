// The loop methods asyncio's own C code calls for every future and task:
// Future.__init__ asks loop.get_debug(), Task.__init__ with eager_start asks
// loop.is_running(), and loop.create_future() makes them. asyncio defines
// them in Python on BaseEventLoop; these are the same one-liners without a
// Python frame each time, reading the native state asyncio's attributes map to.
//
// Threading: the loop thread's, like asyncio's (is_closed() is also safe from
// other threads: `closed` is read atomically).
#include "loop_core.hpp"
#include "python_helpers.hpp"

namespace pyloop::py {

namespace {

PyObject* loop_kwnames = nullptr;  // ("loop",)
PyObject* str_future = nullptr;

}  // namespace

int init_loop_queries() {
  loop_kwnames = Py_BuildValue("(s)", "loop");
  str_future = PyUnicode_InternFromString("Future");
  return loop_kwnames && str_future ? 0 : -1;
}

// get_debug(): `return self._debug`.
PyObject* loop_get_debug(LoopCoreObject* self, PyObject*) {
  return PyBool_FromLong(loop_debug(reinterpret_cast<PyObject*>(self)));
}

// is_running(): `return (self._thread_id is not None)`.
PyObject* loop_is_running(LoopCoreObject* self, PyObject*) {
  return PyBool_FromLong(self->thread_id != nullptr && self->thread_id != Py_None);
}

// is_closed(): `return self._closed`.
PyObject* loop_is_closed(LoopCoreObject* self, PyObject*) { return PyBool_FromLong(closed_now(self)); }

// create_future(): `return futures.Future(loop=self)`.
PyObject* loop_create_future(LoopCoreObject* self, PyObject*) {
  PyObject* args[] = {reinterpret_cast<PyObject*>(self)};
  PyObject* future_type = asyncio_class(helpers.futures_globals, str_future);
  if (!future_type) return nullptr;
  PyObject* future = PyObject_Vectorcall(future_type, args, 0, loop_kwnames);
  Py_DECREF(future_type);
  return future;
}

}  // namespace pyloop::py
