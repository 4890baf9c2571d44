"""Drives one stream transport, and the raw socket at its other end, through
a list of operations on one event loop, and records what a program could
observe: the protocol's callbacks, what each operation returned or raised,
the bytes each end received, the order callbacks ran in and what the loop
logged. tests/test_fuzz_against_asyncio.py runs the same list on asyncio's
loop and on pyloop and compares the two records.

An operation is a tuple: its name, its arguments, and last what the driver
does after it: "settle" (run the loop until it is quiet), "step" (one loop
iteration) or "none" (go straight on). Settling is what makes a record
comparable: both ends' kernel buffers are small and fixed (no autotuning),
the peer acts only between operations, and after a settle neither the
loop nor the kernel has anything left to do, so the next operation finds
the same state on both loops. After the peer's operations the driver
always settles (see Driver.apply). What stays different even so is how
many bytes the kernel holds: pyloop's I/O thread hands a transport's
buffer to the kernel in other pieces and at other moments than asyncio's
loop, and the kernel's room depends on the pieces.
The driver checks what depends on that against asyncio's rules on each
loop (`violations`), and notes where the buffer was empty (`emptiness`),
for the test to see where two runs' paths part.
"""

import asyncio
import fcntl
import gc
import logging
import os
import random
import select
import socket
import struct
import termios
import time
import warnings

# Each settling round runs the loop this long; the loop is quiet once two
# rounds in a row changed nothing and nothing is due (see Driver.busy).
SETTLE_ROUND = 0.001
SETTLE_QUIET_ROUNDS = 2
# A loop still busy after this long is recorded as such (and so differs
# from asyncio's); a hang can't outlast it.
SETTLE_LIMIT = 3.0
# The longest the peer reads what the transport sends when it is closed at
# the end.
DRAIN_LIMIT = 10.0
# What the transport's socket may send before the kernel holds it back, and
# what the peer's may receive (the kernel doubles both): small, so that
# writes of a few KB already fill the socket and reach flow control.
TRANSPORT_SNDBUF = 4096
PEER_RCVBUF = 4096
# The transport's receive buffer (TCP), large enough for everything the peer
# sends in one example while reading is paused.
TRANSPORT_RCVBUF = 200_000
# With every stream offloaded, pyloop's write() hands the data to the I/O
# thread, which sends it a moment later, where asyncio's loop sends it at
# once: so the peer acts only on a settled loop (both loops), and finds in
# the kernel what it would find with asyncio's (a Unix peer that closes
# with data unread resets the connection, one with none only ends it).
SETTLE_BEFORE_PEER = os.environ.get("PYLOOP_OFFLOAD") == "always"


def pending_in(sock):
    """Bytes waiting in sock's receive queue."""
    return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0" * 4))[0]


def pending_out(sock):
    """Bytes a TCP socket holds that the other end has not acknowledged (SIOCOUTQ)."""
    return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0" * 4))[0]


def unacked(sock):
    """TCP segments sock has sent and the other end has not acknowledged
    (tcp_info's tcpi_unacked)."""
    return struct.unpack_from("I", sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104), 24)[0]


def outcome(exc):
    return None if exc is None else type(exc).__name__


class Recorder(asyncio.Protocol):
    """Writes every callback into the driver's log."""

    def __init__(self, driver):
        self.driver = driver
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport
        self.driver.event("connection_made")

    def data_received(self, data):
        self.driver.received(bytes(data))

    def eof_received(self):
        self.driver.event("eof_received")
        self.driver.eof_seen = True
        return self.driver.eof_result

    def pause_writing(self):
        self.driver.flow_control("pause_writing")

    def resume_writing(self):
        self.driver.flow_control("resume_writing")

    def connection_lost(self, exc):
        self.driver.event("connection_lost", outcome(exc))
        self.driver.lost(exc)


class BufferedRecorder(Recorder, asyncio.BufferedProtocol):
    """The same through get_buffer/buffer_updated, into a buffer of a given size."""

    def __init__(self, driver, size):
        super().__init__(driver)
        self.buffer = bytearray(size)

    def get_buffer(self, sizehint):
        return self.buffer

    def buffer_updated(self, nbytes):
        self.driver.received(bytes(self.buffer[:nbytes]))


class LogCapture(logging.Handler):
    def __init__(self, into):
        super().__init__(logging.WARNING)
        self.into = into

    def emit(self, record):
        self.into.append((record.levelname, record.getMessage()))


def open_pair(family):
    """(transport's socket, peer's socket), connected, with small buffers."""
    if family == "unix":
        a, b = socket.socketpair()
        a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, TRANSPORT_SNDBUF)
        b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, PEER_RCVBUF)
    else:
        # Receive buffers are set before the connection exists: the window
        # scale is agreed in the handshake.
        with socket.socket() as listener:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, TRANSPORT_RCVBUF)
            listener.bind(("127.0.0.1", 0))
            listener.listen(1)
            b = socket.socket()
            b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, PEER_RCVBUF)
            b.connect(listener.getsockname())
            a, _ = listener.accept()
        a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, TRANSPORT_SNDBUF)
        b.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    a.setblocking(False)
    b.setblocking(False)
    return a, b


class Driver:
    """One run of a list of operations on one loop. `setup` is the
    connection's shape: (family, how, protocol, eof_result, seed), where
    family is "unix" or "tcp", how "create_connection" or
    "connect_accepted_socket", protocol "plain" or a buffer size (a
    BufferedProtocol), eof_result what eof_received returns, and seed the
    source of every byte sent."""

    def __init__(self, loop_factory, setup):
        family, how, protocol, eof_result, seed = setup
        self.loop_factory = loop_factory
        self.family, self.how, self.protocol_kind = family, how, protocol
        self.eof_result = eof_result
        self.rng = random.Random(seed)
        self.log = []  # the protocol's callbacks and the test's own in order, and settle marks
        self.results = []  # (index of the operation, its name, what it returned or raised)
        # (operations applied, whether the write buffer was empty) before
        # each operation and at each settle mark: where two loops' kernels
        # took different amounts, this is where their paths part.
        self.emptiness = []
        self.warnings = []  # what the loop logged or handed its exception handler
        self.violations = []  # where the loop broke one of asyncio's rules (the checks below)
        self.timers = {}  # label: handle, of every call_later
        self.fired = {}  # timer label: (loop time when it ran, its handle's when())
        self.handles = []  # every call_soon and call_later handle, for cancel
        self.ran = set()  # labels of the callbacks that ran
        self.cancelled_early = set()  # labels of the callbacks cancelled before they ran
        self.eof_seen = False
        self.paused = False  # pause_writing came last
        self.bytes_in = bytearray()  # what the protocol received
        self.bytes_written = bytearray()  # what write() and writelines() took
        self.eof_written = False
        self.aborted = False
        # asyncio's write() and writelines() take data after close() too,
        # and where close() found the buffer empty, connection_lost comes
        # next with that data unsent, writing paused or not.
        self.written_while_closing = False
        self.just_settled = False  # nothing has happened since the last settle
        # Where the transport threw away what it had not sent (abort, a fatal
        # error): from there on, what reaches the peer depends on what the
        # kernel had taken. An index into results.
        self.discarded_at = None
        self.peer_sent = bytearray()
        self.peer_got = bytearray()
        self.peer_end = None  # how the peer's reading ended: "eof" or an exception's type
        self.unsettled = 0
        self.applied = 0  # operations applied so far
        # Since the loop last settled, something has happened that pyloop's
        # I/O thread answers at once (see apply).
        self.io_answers = False
        self.shared = False  # an I/O thread shares the transport's socket (pyloop)

    # --- the record -------------------------------------------------------------

    def event(self, *what):
        self.log.append(what)

    def received(self, data):
        self.bytes_in += data
        self.log.append(("data", data))

    def result(self, op, value):
        self.results.append((self.applied, op, value))

    def attempt(self, op, fn, *args):
        """Calls fn(*args); records what it returned, or the exception's type and message."""
        try:
            value = fn(*args)
        except Exception as exc:  # noqa: BLE001 (what it raised is the record)
            self.result(op, ("raised", type(exc).__name__, str(exc)))
            return False
        self.result(op, ("returned", value))
        return True

    def note_emptiness(self):
        self.emptiness.append((self.applied, not self.transport.get_write_buffer_size()))

    def violation(self, what):
        self.violations.append((self.applied, what))

    def discard(self):
        if self.discarded_at is None:
            self.discarded_at = len(self.results)

    # --- asyncio's rules, checked on each loop ------------------------------------

    def flow_control(self, what):
        """pause_writing only above the high-water mark, resume_writing only
        at or below the low-water mark (asyncio's _maybe_pause_protocol and
        _maybe_resume_protocol), one after the other."""
        self.event(what)
        size = self.transport.get_write_buffer_size()
        low, high = self.transport.get_write_buffer_limits()
        pausing = what == "pause_writing"
        if pausing == self.paused:
            self.violation(f"{what} twice")
        if pausing and not size > high:
            self.violation(f"pause_writing at {size} bytes, high-water mark {high}")
        if not pausing and not size <= low:
            self.violation(f"resume_writing at {size} bytes, low-water mark {low}")
        self.paused = pausing

    def lost(self, exc):
        # The transport closes its socket next. With input unread, the
        # kernel resets a TCP connection, and the peer loses what it had
        # not read yet too.
        unread = self.family == "tcp" and self.sock.fileno() != -1 and pending_in(self.sock)
        if exc is not None or unread:
            self.discard()
        # The buffer empties by sending, which resumes a paused protocol, or
        # by being thrown away.
        if self.paused and exc is None and not self.aborted and not self.written_while_closing:
            self.violation("connection_lost(None) while writing is paused")

    def check_after_write(self, size, was_closing):
        """A write of data that leaves the buffer above the high-water mark
        pauses the protocol before it returns (not writelines: asyncio's
        3.13.0 does not pause there)."""
        if size and not was_closing and not self.paused:
            if self.transport.get_write_buffer_size() > self.transport.get_write_buffer_limits()[1]:
                self.violation("write() left the buffer above the high-water mark, not paused")

    def check_bytes_accounted(self):
        """Settled, with nothing thrown away: every byte written is either in
        the transport's buffer, in the kernel (the transport's send queue or
        the peer's receive queue) or read by the peer."""
        if (self.transport.is_closing() or self.eof_written or self.discarded_at is not None
                or self.peer is None or self.peer_end is not None):
            return
        in_kernel = pending_in(self.peer)
        if self.family == "tcp":
            in_kernel += pending_out(self.sock)
        buffered = self.transport.get_write_buffer_size()
        if buffered + in_kernel + len(self.peer_got) != len(self.bytes_written):
            self.violation(f"{len(self.bytes_written)} bytes written, {len(self.peer_got)} read by "
                           f"the peer, {in_kernel} in the kernel, {buffered} in the buffer")

    # --- running ----------------------------------------------------------------

    def run(self, ops):
        self.loop = self.loop_factory()
        logger = logging.getLogger("asyncio")
        capture = LogCapture(self.warnings)
        logger.addHandler(capture)
        self.loop.set_exception_handler(self.exception_handler)
        self.sock, self.peer = open_pair(self.family)
        try:
            self.connect()
            for op in ops:
                self.apply(op)
            self.finish()
        finally:
            if self.peer is not None:
                self.peer.close()
            self.sock.close()  # the transport's socket, should it still be open
            if not self.loop.is_closed():
                self.loop.close()
            logger.removeHandler(capture)
            self.loop = self.transport = self.protocol = None
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                gc.collect()
            self.warnings += [("warning", w.category.__name__) for w in caught]
        return self

    def exception_handler(self, loop, context):
        exc = context.get("exception")
        self.warnings.append(("exception_handler", context.get("message"), outcome(exc)))

    def connect(self):
        if self.protocol_kind == "plain":
            self.protocol = Recorder(self)
        else:
            self.protocol = BufferedRecorder(self, self.protocol_kind)
        make = getattr(self.loop, self.how)
        made = make(lambda: self.protocol, sock=self.sock)
        self.transport, _ = self.loop.run_until_complete(made)
        # pyloop's transport sends through its I/O thread once one shares the socket.
        io_write_ready = getattr(self.transport, "_io_write_ready", None)
        self.shared = io_write_ready is not None and self.transport._write_ready == io_write_ready
        self.settle()

    def run_for(self, seconds):
        stop = self.loop.call_later(seconds, self.loop.stop)
        self.loop.run_forever()
        stop.cancel()

    def step(self):
        self.loop.call_soon(self.loop.stop)
        self.loop.run_forever()

    def busy(self):
        """What the loop or the kernel has still to do, as far as the test
        can see; None when nothing."""
        for label, handle in self.timers.items():
            if not handle.cancelled() and label not in self.fired:
                return "a timer"
        tcp = self.family == "tcp"
        open_ = self.sock.fileno() != -1  # else the transport has closed it
        # An acknowledgement still to come frees room in the sender's buffer
        # and may open its window. (The receiver delays it by up to 40 ms.)
        if tcp and self.peer is not None and unacked(self.peer):
            return "the peer's data unacknowledged"
        if tcp and open_ and unacked(self.sock):
            return "the transport's data unacknowledged"
        # The peer has read all it had while the transport's socket holds
        # more: the window update that lets it go may wait for a timer.
        peer_empty = self.peer is not None and not pending_in(self.peer)
        if tcp and open_ and peer_empty and pending_out(self.sock):
            return "the transport's data held by the kernel"
        if not open_:
            return None
        poll = select.poll()
        poll.register(self.sock, select.POLLIN | select.POLLOUT)
        ready = poll.poll(0)
        events = ready[0][1] if ready else 0
        # Readable (data, EOF or an error) while the transport reads: it must read.
        reading = self.transport.is_reading() and not self.eof_seen
        if reading and events & (select.POLLIN | select.POLLERR):
            return "unread input"
        # Writable while the transport holds data: it must send.
        if self.transport.get_write_buffer_size() and events & (select.POLLOUT | select.POLLERR):
            return "unsent output"
        return None

    def fingerprint(self):
        state = [len(self.log), len(self.fired), self.transport.get_write_buffer_size()]
        if self.sock.fileno() != -1:
            state += [pending_in(self.sock), pending_out(self.sock)]
        if self.peer is not None:
            state += [pending_in(self.peer), pending_out(self.peer)]
        return state

    def settle(self, mark=True):
        """Runs the loop until it is quiet (see the module's docstring); with
        mark, notes in the log how many operations had been applied then."""
        deadline = time.monotonic() + SETTLE_LIMIT
        last, quiet = None, 0
        while time.monotonic() < deadline:
            self.run_for(SETTLE_ROUND)
            now = self.fingerprint()
            quiet = quiet + 1 if now == last and self.busy() is None else 0
            if quiet >= SETTLE_QUIET_ROUNDS:
                self.just_settled = True
                if mark:
                    self.log.append(("settled", self.applied))
                    self.note_emptiness()
                self.check_bytes_accounted()
                return
            last = now
        self.unsettled += 1
        self.event("still busy", self.busy())

    # --- operations -------------------------------------------------------------

    def apply(self, op):
        name, *args, then = op
        # pyloop's I/O thread answers what the peer does at once (it sends
        # into the room a read made), while asyncio's
        # loop, stopped, does nothing until it runs: so after the peer's
        # operations the loop settles before the next other one.
        peer_op = name.startswith("peer_")
        if (self.io_answers and not peer_op) or (peer_op and SETTLE_BEFORE_PEER and not self.just_settled):
            self.settle()
        self.note_emptiness()
        getattr(self, "op_" + name)(*args)
        self.applied += 1
        self.just_settled = False
        self.io_answers = peer_op and then != "settle"
        if then == "settle":
            self.settle()
        elif then == "step" and not self.io_answers:
            self.step()

    def payload(self, size, form="bytes"):
        data = self.rng.randbytes(size)
        if form == "bytearray":
            return bytearray(data)
        if form == "memoryview":
            return memoryview(data)
        return data

    def op_write(self, size, form):
        data = self.payload(size, form)
        was_closing = self.transport.is_closing()
        self.written_while_closing |= was_closing
        if self.attempt("write", self.transport.write, data):
            self.bytes_written += data
            self.check_after_write(size, was_closing)

    def op_write_bad(self, value):
        self.attempt("write", self.transport.write, value)

    def op_writelines(self, sizes):
        chunks = [self.payload(size) for size in sizes]
        self.written_while_closing |= self.transport.is_closing()
        self.attempt("writelines", self.transport.writelines, chunks)
        # What it took is sent even where it raised: on CPython 3.13.0
        # asyncio's writelines() after close() buffers the data, then fails
        # to call _write_ready (TypeError: close() set it to None), and the
        # buffer still goes out. Only after write_eof() (RuntimeError) does
        # it take nothing.
        if not self.results[-1][2][1:2] == ("RuntimeError",):
            self.bytes_written += b"".join(chunks)

    def op_query(self, method):
        # write_eof, can_write_eof, pause_reading, resume_reading, is_reading,
        # is_closing, close, abort, get_write_buffer_size, get_write_buffer_limits
        if method == "abort":
            self.aborted = True
            if not self.transport.is_closing() or self.transport.get_write_buffer_size():
                self.discard()
        done = self.attempt(method, getattr(self.transport, method))
        if method == "write_eof" and done:
            self.eof_written = True

    def op_set_write_buffer_limits(self, high, low):
        kwargs = {k: v for k, v in (("high", high), ("low", low)) if v is not None}
        set_limits = self.transport.set_write_buffer_limits
        self.attempt("set_write_buffer_limits", lambda: set_limits(**kwargs))

    def op_peer_send(self, size):
        data = self.payload(size)
        if self.peer is None:
            return self.result("peer_send", "closed")
        try:
            sent = self.peer.send(data)
        except BlockingIOError:
            sent = 0
        except OSError as exc:
            return self.result("peer_send", outcome(exc))
        self.peer_sent += data[:sent]
        self.result("peer_send", sent)

    def peer_recv(self, limit):
        """What the peer's socket has now, up to limit, in one recv() (more
        calls would race with pyloop's I/O thread, which sends as soon as
        the first one makes room, while asyncio's loop, stopped, sends
        nothing); notes how the peer's reading ended."""
        if self.peer_end is not None:
            return 0
        try:
            data = self.peer.recv(limit)
        except BlockingIOError:
            return 0
        except OSError as exc:
            self.peer_end = outcome(exc)
            return 0
        if not data:
            self.peer_end = "eof"
        self.peer_got += data
        return len(data)

    def op_peer_recv(self, limit):
        """The peer reads `limit` bytes of the stream, or what the transport
        sends before it goes quiet: as many on every loop, however the
        kernel cut the stream."""
        if self.peer is None:
            return self.result("peer_recv", "closed")
        got, idle = 0, False
        while got < limit and self.peer_end is None:
            n = self.peer_recv(limit - got)
            got += n
            if n:
                idle = False
            elif idle:
                break
            else:
                self.settle(mark=False)
                idle = True
        self.result("peer_recv", (got, self.peer_end))

    def op_peer_shutdown(self):
        if self.peer is None:
            return self.result("peer_shutdown", "closed")
        try:
            self.peer.shutdown(socket.SHUT_WR)
        except OSError as exc:
            return self.result("peer_shutdown", outcome(exc))
        self.result("peer_shutdown", "ok")

    def op_peer_close(self, reset):
        if self.peer is None:
            return
        if reset:  # RST instead of FIN (TCP); a Unix socket just closes
            self.peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.peer.close()
        self.peer = None

    def callback(self, kind, label):
        self.log.append((kind, label))
        self.ran.add(label)
        if kind == "timer":
            self.fired[label] = (self.loop.time(), self.timers[label].when())

    def op_call_soon(self):
        label = len(self.handles)
        self.handles.append(self.loop.call_soon(self.callback, "soon", label))

    def op_call_later(self, delay):
        label = len(self.handles)
        handle = self.loop.call_later(delay, self.callback, "timer", label)
        self.handles.append(handle)
        self.timers[label] = handle

    def op_cancel(self, index):
        if self.handles:
            label = index % len(self.handles)
            self.handles[label].cancel()
            if label not in self.ran:
                self.cancelled_early.add(label)

    def op_settle(self):
        self.settle()

    def op_step(self):
        self.step()

    # --- the end ------------------------------------------------------------------

    def finish(self):
        """Ends the example the same way on every loop: the transport is
        closed, unless it is already, and the peer reads what it is sent until
        its reading ends, then closes."""
        self.settle()
        self.io_answers = False
        if not self.transport.is_closing():
            self.transport.close()
        # How the peer's reads and the transport's sends interleave from
        # here on is up to the scheduler: nothing is marked.
        deadline = time.monotonic() + DRAIN_LIMIT
        while self.peer is not None and self.peer_end is None:
            if time.monotonic() > deadline:
                self.event("peer still reading")
                break
            self.peer_recv(1 << 20)
            self.run_for(SETTLE_ROUND)
        if self.peer is not None:
            self.peer.close()
            self.peer = None
        self.settle(mark=False)
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()
