// TransportCore: native paths of pyloop's socket transport (see
// transport_core.cpp), and its link to an I/O thread (transport_stream.cpp).
// Threading: the loop thread's, like the transport.
#pragma once

#include <Python.h>

#include <cstddef>
#include <deque>

#include "pyloop/rt/inbox.hpp"
#include "pyloop/rt/io_thread.hpp"
#include "pyloop/rt/stream.hpp"

namespace pyloop::py {

struct LoopState;
struct LoopCoreObject;

// A transport's share in an rt::Stream: the socket it reads together with an
// I/O thread. Owned by the transport; the Stream itself is handed to the I/O
// thread to delete when the transport lets go (detach_stream).
struct StreamLink {
  rt::Stream* stream;
  rt::IoThread* io;
  PyObject* transport;  // borrowed: the transport detaches before it goes
  LoopState* loop;
  // Reads of the I/O thread the protocol has not had yet: reading is paused,
  // or a BufferedProtocol took part of one.
  std::deque<rt::CompletionPtr> backlog;
  // Writes handed to the I/O thread and not reported sent yet, oldest first:
  // the first entries of asyncio's write buffer, pinned (transport_writes.cpp).
  std::deque<Py_buffer> pinned;
  std::size_t front_sent = 0;  // of pinned.front(), reported sent
  bool submit_due = false;     // in LoopState::writes_due
  PyObject* held = nullptr;    // the transport, while writes are on their way (transport_writes.cpp)
  bool delivery_scheduled = false;  // a _deliver_backlog is in the ready queue
  bool rearm_due = false;           // in LoopState::rearms_due (fd_watch.cpp)
};

// Made at import by _make_transport_core(asyncio's _SelectorSocketTransport),
// whose subclass it is: a C type can keep per-transport fields only on top
// of the base's own layout (asyncio's transports use __slots__).
extern PyTypeObject* TransportCoreType;

int register_transport_core(PyObject* module);
PyObject* make_transport_core(PyObject* module, PyObject* base);

// The protocol calls of a read, in transport_core.cpp. Both return None when
// done (an error already handled as asyncio does), nullptr when an exception
// must propagate.
// data_received(data) (data: a new reference, taken) or, for n <= 0, EOF
// (0) or the error `err` (-1).
PyObject* transport_received(PyObject* self, ssize_t n, int err, PyObject* data);
// get_buffer(-1), copies what fits of data[0..len), buffer_updated(count);
// sets *used to the count.
PyObject* transport_received_into(PyObject* self, const char* data, std::size_t len, std::size_t* used);
// Whether the protocol is a BufferedProtocol (asyncio's set_protocol choice).
int transport_buffered(PyObject* self);

// In transport_stream.cpp. _attach_stream(loop) -> whether an I/O thread
// shares the socket now (it reads it, unless it is a Unix datagram socket,
// and sends what the socket could not take) / _detach_stream().
PyObject* attach_stream(PyObject* self, PyObject* loop);
PyObject* detach_stream(PyObject* self, PyObject* unused);
// Before the loop reads fd, the transport's socket, itself: 1 to go ahead
// (with *link set, and its read claim held when not null: pass it to
// end_read after), 0 to skip (the I/O thread is reading, or has reads the
// protocol has not had: those are handed over now), -1 on error.
int begin_read(PyObject* self, int fd, StreamLink** link);
void end_read(StreamLink* link, ssize_t n, int err);
// _deliver_backlog(): hands held reads to the protocol (resume_reading).
PyObject* deliver_backlog(PyObject* self, PyObject* unused);
// _held_reads() -> bool: whether there is anything for _deliver_backlog.
PyObject* held_reads(PyObject* self, PyObject* unused);
// The transport's link, when an I/O thread shares its socket.
StreamLink* stream_link(PyObject* self);

// In transport_writes.cpp.
// _io_write_ready(): the transport's _write_ready while it has a link.
PyObject* io_write_ready(PyObject* self, PyObject* unused);
// _io_written(written, errno, file_sent, file_done, file_errno): a
// WriteReport, taken on the loop thread.
PyObject* io_written(PyObject* self, PyObject* const* args, Py_ssize_t nargs);
// _io_sendfile(fileno, offset, count) -> bool: sends that span of the file
// (count 0: to its end) after everything written before; False when no I/O
// thread shares the socket. _io_sendfile_stop(): ends it early.
PyObject* io_sendfile(PyObject* self, PyObject* const* args, Py_ssize_t nargs);
PyObject* io_sendfile_stop(PyObject* self, PyObject* unused);
// Hands the I/O threads this iteration's writes and sendfile submissions;
// once per iteration.
int submit_writes(LoopState& s);
// A WriteReport from the inbox: _io_written(...) from the ready queue.
// Scheduled as deliver_chunk is, where asyncio would run _write_ready.
int deliver_write_report(LoopCoreObject* loop, rt::CompletionPtr report);
// The transport writes no more through its I/O thread: takes the stream's
// write claim for good and releases what was pinned (detach_stream).
void forget_writes(StreamLink& link);
// add_writer(fd, transport._io_write_ready), or a datagram transport's
// _sendto_ready, for a linked transport: no epoll registration, its writes
// are submitted instead. False for any other writer.
bool take_transport_writer(LoopState& s, int fd, PyObject* callback);
// write(data) on an offloaded stream whose buffer is empty, as asyncio's
// write() would buffer it after a send that took nothing: into the write
// buffer (a bytes copy of anything else, which asyncio's send would have
// taken at once), handed to the I/O thread with this iteration's
// submissions; pause_writing if that passes the high-water mark.
PyObject* queue_write(PyObject* self, StreamLink& link, PyObject* data);
// asyncio's write() or sendto() buffered data: it goes with this
// iteration's submissions.
void note_buffered_write(PyObject* self);
// _io_datagrams_sent(count, errno): a WriteReport of a datagram
// transport's sends, taken on the loop thread.
PyObject* io_datagrams_sent(PyObject* self, PyObject* const* args, Py_ssize_t nargs);

// Keeps the loop's loans to its I/O threads topped up (rt::BufferSupply):
// empty bytes objects they read into, handed to the protocol as they are.
void lend_buffers(LoopState& s);
// The loop is going: takes back (and frees) the loans not in use. Loans an
// I/O thread holds at that moment are lost with their objects.
void take_back_loans(LoopState& s);

// Runs callable(*args) from the loop's ready queue, after the callbacks
// already queued (a Handle, as call_soon makes). -1 with an exception set.
int schedule_call(LoopCoreObject* loop, PyObject* callable, PyObject* const* args, Py_ssize_t nargs);
// A ReadChunk from the inbox for the transport with that stream id: held,
// and handed to the protocol by _deliver_backlog from the ready queue, where
// asyncio would run the socket's read callback: after the callbacks queued
// before it (a callback may expect to run before data arrives).
int deliver_chunk(LoopCoreObject* loop, rt::CompletionPtr chunk);

}  // namespace pyloop::py
