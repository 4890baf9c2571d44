"""pyloop.Loop: asyncio's event loop on a native core.

The native base (_native.LoopCore) owns the ready queue, the timer heap, the
loop's epoll (fd watching and cross-thread wake-ups) and the loop iteration,
and implements call_soon, call_later, call_at, call_soon_threadsafe, time,
create_task and the fd watchers (_add_reader, _remove_reader, ...).

Everything above that is asyncio's own code running on the native state
(through LoopCore's attributes _closed, _stopping, _debug, _thread_id, ...):
tasks, executors, exception handling and debug mode from BaseEventLoop, and,
from asyncio's Unix selector loop, the socket, Unix socket, datagram, pipe,
subprocess, TLS and signal machinery, whose transports watch their fds
through the native watchers. So every method behaves, and fails, exactly as
asyncio's does. The sock_* methods and add_reader/add_writer are pyloop's
own (_sockets.py), and so are getaddrinfo, which runs on the native executor
(_dns.py), and sendfile over a transport, which runs on the transport's I/O
thread when it has one (_sendfile.py).
"""

import asyncio
import os
import selectors
import socket
import warnings
import weakref
from asyncio import constants, selector_events, sslproto
from selectors import _fileobj_to_fd

from . import (
    _handles,  # noqa: F401  (registers the native code's helpers)
    _native,
)
from ._dns import ResolverMethods
from ._executor import ExecutorMethods
from ._sendfile import SendfileMethods
from ._sockets import SocketMethods


class _WatcherView:
    """What asyncio's selector-loop code reads from its selector (get_key, to
    learn whether a fd is watched), answered from the native watchers; the
    watching itself never goes through here."""

    def __init__(self, loop):
        self._loop = weakref.ref(loop)

    def get_key(self, fileobj):
        loop = self._loop()
        fd = loop._fd_of(fileobj) if loop is not None else _fileobj_to_fd(fileobj)
        watchers = loop._watchers_of(fd) if loop is not None and not loop.is_closed() else None
        if watchers is None:
            raise KeyError(f"{fileobj!r} is not registered")
        reader, writer = watchers
        events = (selectors.EVENT_READ if reader else 0) | (selectors.EVENT_WRITE if writer else 0)
        return selectors.SelectorKey(fileobj, fd, events, watchers)

    def close(self):
        pass


class _SharedSocket:
    """What a transport adds to asyncio's when an I/O thread may share its
    socket (pyloop/rt/io_thread.hpp): reads the I/O thread made while reading
    was paused are handed over on resume, and the I/O thread lets go of the
    socket before it is closed."""

    __slots__ = ()

    def resume_reading(self):
        super().resume_reading()
        if self.is_reading() and self._held_reads():
            # Without waiting for the socket to turn readable again.
            self._loop.call_soon(self._deliver_backlog)

    def _call_connection_lost(self, exc):
        self._detach_stream()
        super()._call_connection_lost(exc)

    def __del__(self, _warn=warnings.warn):
        self._detach_stream()
        super().__del__(_warn)


class _SocketTransport(_SharedSocket, _native._make_transport_core(selector_events._SelectorSocketTransport)):
    """asyncio's socket transport, with its per-message paths (reading and
    write()) in C++ (_native.TransportCore), reading 64 KiB per recv().

    asyncio reads up to 256 KiB, so every recv() allocates a 256 KiB bytes
    object and shrinks it to what arrived. With glibc that allocation is large
    enough to be mapped and unmapped around every read; at 64 KiB it stays on
    the heap. Measured with bench/echo_server.py (proto mode) and
    bench/echo_client on this project's 2-core machine: 1 KiB messages
    26.0k -> 42.4k requests/s at one connection, 41k -> 141k at six; 100 KiB
    messages 10.2k -> 18.8k requests/s. When a read fills its 64 KiB, the
    native read sizes the rest from FIONREAD (up to 256 KiB in all), so a
    large message still reaches data_received in one piece, and the next
    read on that connection asks for 127 KiB (still below glibc's mmap
    threshold): a 100 KiB message then takes one recv() instead of two and
    an ioctl. Reading 127 KiB on every connection cost 1 KiB messages at six
    connections 158k -> 136k requests/s (proto, 3 rounds), so only
    connections that carry large messages do. (Reading 256 KiB
    at once only on connections that carry large messages does not help:
    glibc maps each such block, shrinking it keeps it mapped, and freeing the
    shrunk block never raises glibc's dynamic mmap threshold, so every read
    costs mmap, mremap and munmap, as strace shows.) Reading small messages
    into one block per thread and copying what arrived into a bytes object
    of that size, which callgrind counts as cheaper than allocating 64 KiB
    and shrinking it, measured no better on the machine (proto 1 KiB at six
    connections 0.96 of the requests/s and 1.06 of the server CPU per
    request, stream 1 KiB at eleven 0.91 and 1.11; medians of 10 rounds,
    the two builds back to back in each).
    """

    max_size = 64 * 1024

    # An I/O thread shares the socket (see pyloop/rt/io_thread.hpp): it
    # reads while the loop is busy, and sends what the socket could not take
    # at once, reporting back to _io_written (native) and _io_sent. It lets
    # go before the socket is closed.

    def __init__(self, loop, sock, protocol, waiter=None, extra=None, server=None):
        # asyncio's class-level default, which the native member would hide.
        self._sock = None
        super().__init__(loop, sock, protocol, waiter, extra, server)
        if self._attach_stream(loop):
            self._write_ready = self._io_write_ready

    def writelines(self, list_of_data):
        try:
            super().writelines(list_of_data)
        finally:
            # After close(), while the buffer drains, asyncio's writelines()
            # adds to the buffer, then raises calling _write_ready (close()
            # set it to None) before it registers its writer; the writer
            # registered before sends what it added all the same. An I/O
            # thread sends only what it is handed: registering the writer
            # is what hands it over (take_transport_writer).
            if self._write_ready is None and self._buffer and not self._conn_lost:
                self._loop._add_writer(self._sock_fd, self._io_write_ready)

    _io_file = None  # the loop.sendfile() span the I/O thread sends (_sendfile.py)

    def _io_file_sent(self, sent, done, errno):
        if self._io_file is not None:
            self._io_file.progress(sent, done, errno)

    def _io_sent(self, nbytes, errno):
        # The I/O thread sent nbytes more of the write buffer, or failed with
        # errno: asyncio's _write_sendmsg from after its send on.
        if self._conn_lost:
            return
        if errno:
            exc = OSError(errno, os.strerror(errno))
            self._buffer.clear()
            self._fatal_error(exc, 'Fatal write error on socket transport')
            if self._empty_waiter is not None:
                self._empty_waiter.set_exception(exc)
            return
        self._adjust_leftover_buffer(nbytes)
        buffer = self._buffer
        while buffer and not buffer[0]:  # never sent, never reported: done
            buffer.popleft()
        self._maybe_resume_protocol()  # May append to buffer.
        if not self._buffer:
            if self._empty_waiter is not None:
                self._empty_waiter.set_result(None)
            if self._closing:
                self._call_connection_lost(None)
            elif self._eof:
                self._sock.shutdown(socket.SHUT_WR)

    def _call_connection_lost(self, exc):
        self._detach_stream()  # the I/O thread lets go of the socket and the file
        if self._io_file is not None:
            self._io_file.progress(0, True, ConnectionError("Connection is closed by peer"))
        if self._empty_waiter is not None and self._empty_waiter.done():
            # A sendfile's, whose wait for the buffer to empty is over: the
            # send ends with the file above. asyncio's _call_connection_lost
            # would set it again, and hand the InvalidStateError to the
            # exception handler.
            self._empty_waiter = None
        super()._call_connection_lost(exc)


_asyncio_sendto_ready = selector_events._SelectorDatagramTransport._sendto_ready


class _DatagramTransport(_SharedSocket, _native._make_datagram_core(selector_events._SelectorDatagramTransport)):
    """asyncio's datagram transport, with receiving and sendto() for IPv4 and
    IPv6 in C++ (_native.DatagramCore): a datagram is received into a
    per-thread buffer instead of a new 256 KiB bytes object, and sent at once
    without asyncio's Python checks when the address is numeric. Measured
    with bench/echo.py --modes udp (1 KiB, 11 clients, this project's 2-core
    machine): see docs/performance.md, "Datagrams". An I/O thread receives too while the
    loop is busy (UDP sockets only)."""

    # What asyncio counts per buffered datagram beside its bytes, taken off
    # again when it is sent: 8 from CPython 3.14 on, before that none (3.13
    # counts 8 on the way in only).
    _header_size = getattr(selector_events._SelectorDatagramTransport, "_header_size", 0)

    def __init__(self, loop, sock, protocol, address=None, waiter=None, extra=None):
        # asyncio's class-level default, which the native member would hide.
        self._sock = None
        super().__init__(loop, sock, protocol, address, waiter, extra)
        self._attach_stream(loop)

    # With an I/O thread sharing the socket, datagrams the socket could not
    # take at once are sent by it (_sendto_ready submits them, see
    # pyloop/native/transport_writes.cpp), and reported here.

    def _io_sent_datagrams(self, count, errno):
        # The I/O thread sent `count` more datagrams of the buffer, the last
        # of which failed with errno if that is set: asyncio's _sendto_ready
        # from its sends on.
        if self._conn_lost or self._sock is None:
            return
        buffer = self._buffer
        header = self._header_size
        for _ in range(count):
            data, _ = buffer.popleft()
            self._buffer_size -= len(data) + header
        if errno:
            # asyncio stops at the error and goes on when the socket is next
            # writable; the I/O thread sends the rest meanwhile.
            self._loop.call_soon(self._io_sent_datagrams, 0, 0)
            self._protocol.error_received(OSError(errno, os.strerror(errno)))
            return
        self._maybe_resume_protocol()  # May append to buffer.
        if not self._buffer and self._closing:
            self._call_connection_lost(None)

    def _send_from_loop(self):
        # The next datagram's address is one only the socket module resolves
        # (a host name, a Unix socket's path): asyncio's own _sendto_ready
        # sends from the loop thread until the buffer is empty.
        self._loop._add_writer(self._sock_fd, _asyncio_sendto_ready.__get__(self))


# Bound once, here: code that rebinds asyncio.SelectorEventLoop later (test
# helpers do) must not change what a pyloop loop is built on.
_SelectorLoop = asyncio.SelectorEventLoop


class Loop(_native.LoopCore, SocketMethods, ResolverMethods, SendfileMethods, ExecutorMethods, _SelectorLoop):
    """An asyncio event loop whose core runs natively."""

    def __init__(self):
        self._self_pipe_watched = False
        self._watched_objects = {}  # fd: the file object watched under it (_sockets.py)
        _SelectorLoop.__init__(self, _WatcherView(self))
        # BaseEventLoop.__init__ also made a ready deque and a timer list;
        # the native core holds those queues, and these stay empty.

    def run_forever(self):
        self._run_forever_setup()
        try:
            self._run_until_stopped()
        finally:
            self._run_forever_cleanup()

    def close(self):
        super().close()  # asyncio's own: self-pipe, signal handlers, executor
        if self.is_closed():
            self._clear_callbacks()
            self._watched_objects.clear()

    def _make_self_pipe(self):
        # asyncio's self-pipe carries only signal numbers here (wake-ups go
        # through the native parker), so it is watched only once a signal
        # handler exists: a loop with nothing to watch makes no poll syscall.
        self._ssock, self._csock = socket.socketpair()
        self._ssock.setblocking(False)
        self._csock.setblocking(False)
        self._internal_fds += 1

    def add_signal_handler(self, sig, callback, *args):
        if not self._self_pipe_watched and self._ssock is not None:
            self._add_reader(self._ssock.fileno(), self._read_from_self)
            self._self_pipe_watched = True
        super().add_signal_handler(sig, callback, *args)

    def _make_socket_transport(self, sock, protocol, waiter=None, *, extra=None, server=None):
        self._ensure_fd_no_transport(sock)
        return _SocketTransport(self, sock, protocol, waiter, extra, server)

    def _make_ssl_transport(self, rawsock, protocol, sslcontext, waiter=None, *, server_side=False,
                            server_hostname=None, extra=None, server=None,
                            ssl_handshake_timeout=constants.SSL_HANDSHAKE_TIMEOUT,
                            ssl_shutdown_timeout=constants.SSL_SHUTDOWN_TIMEOUT):
        # asyncio's, over pyloop's socket transport instead of asyncio's.
        self._ensure_fd_no_transport(rawsock)
        ssl_protocol = sslproto.SSLProtocol(self, protocol, sslcontext, waiter, server_side, server_hostname,
                                            ssl_handshake_timeout=ssl_handshake_timeout,
                                            ssl_shutdown_timeout=ssl_shutdown_timeout)
        _SocketTransport(self, rawsock, ssl_protocol, extra=extra, server=server)
        return ssl_protocol._app_transport

    def _make_datagram_transport(self, sock, protocol, address=None, waiter=None, extra=None):
        self._ensure_fd_no_transport(sock)
        return _DatagramTransport(self, sock, protocol, address, waiter, extra)

    def _add_callback(self, handle):
        # asyncio's signal path hands over an asyncio.Handle to run soon.
        if not handle._cancelled:
            self.call_soon(handle._callback, *handle._args, context=handle._context)


def new_event_loop() -> Loop:
    """Returns a new pyloop event loop."""
    return Loop()
