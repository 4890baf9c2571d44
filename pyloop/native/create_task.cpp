// loop.create_task: runs once per task, so the common case (no task factory,
// not in debug mode, only name= and context= given) builds asyncio.Task
// natively; every other case is asyncio's own BaseEventLoop.create_task, so
// task factories, debug tracebacks and version-specific keywords behave
// exactly as they do in the interpreter's asyncio.
#include "loop_core.hpp"
#include "python_helpers.hpp"

namespace pyloop::py {

namespace {

PyObject* str_name = nullptr;
PyObject* str_context = nullptr;
PyObject* str_task = nullptr;
// Keyword names for Task(coro, loop=..., [name=...], [context=...]), indexed
// by (has name) | (has context) << 1.
PyObject* task_kwnames[4] = {};

PyObject* fallback(LoopCoreObject* self, PyObject* const* args, size_t nargsf, PyObject* kwnames) {
  // BaseEventLoop.create_task(self, *args, **kwargs): prepend self.
  Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
  Py_ssize_t total = nargs + (kwnames ? PyTuple_GET_SIZE(kwnames) : 0);
  PyObject* small[8];
  PyObject** stack = total + 1 <= 8 ? small : static_cast<PyObject**>(PyMem_Malloc((total + 1) * sizeof(PyObject*)));
  if (!stack) return PyErr_NoMemory();
  stack[0] = reinterpret_cast<PyObject*>(self);
  for (Py_ssize_t i = 0; i < total; ++i) stack[i + 1] = args[i];
  PyObject* r = PyObject_Vectorcall(helpers.create_task_fallback, stack, nargs + 1, kwnames);
  if (stack != small) PyMem_Free(stack);
  return r;
}

}  // namespace

int init_create_task() {
  str_name = PyUnicode_InternFromString("name");
  str_context = PyUnicode_InternFromString("context");
  str_task = PyUnicode_InternFromString("Task");
  if (!str_name || !str_context || !str_task) return -1;
  task_kwnames[0] = Py_BuildValue("(s)", "loop");
  task_kwnames[1] = Py_BuildValue("(ss)", "loop", "name");
  task_kwnames[2] = Py_BuildValue("(ss)", "loop", "context");
  task_kwnames[3] = Py_BuildValue("(sss)", "loop", "name", "context");
  for (PyObject* t : task_kwnames)
    if (!t) return -1;
  return 0;
}

PyObject* loop_create_task(LoopCoreObject* self, PyObject* const* args, size_t nargsf, PyObject* kwnames) {
  Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
  if (self->task_factory != Py_None || self->debug || nargs != 1) return fallback(self, args, nargsf, kwnames);
  PyObject* name = nullptr;
  PyObject* context = nullptr;
  if (kwnames) {
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(kwnames); ++i) {
      PyObject* key = PyTuple_GET_ITEM(kwnames, i);
      if (key == str_name && !name)
        name = args[nargs + i];
      else if (key == str_context && !context)
        context = args[nargs + i];
      else
        return fallback(self, args, nargsf, kwnames);
    }
  }
  if (check_closed(self) < 0) return nullptr;
  // Task(coro, loop=self, [name=name], [context=context])
  PyObject* stack[4] = {args[0], reinterpret_cast<PyObject*>(self)};
  int which = 0;
  Py_ssize_t n = 2;
  if (name) {
    stack[n++] = name;
    which |= 1;
  }
  if (context) {
    stack[n++] = context;
    which |= 2;
  }
  PyObject* task_type = asyncio_class(helpers.tasks_globals, str_task);
  if (!task_type) return nullptr;
  PyObject* task = PyObject_Vectorcall(task_type, stack, 1, task_kwnames[which]);
  Py_DECREF(task_type);
  return task;
}

}  // namespace pyloop::py
