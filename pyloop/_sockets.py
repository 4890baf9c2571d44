"""asyncio's fd-watching and low-level socket API, on the loop's native fd
watchers (pyloop/native/fd_watch.cpp: _watch_reader, _unwatch_reader, ...).

Every sock_* call tries the operation first and waits for readiness only when
it would block, so the common case costs no epoll registration at all; a wait
registers the fd, and unregisters it once the coroutine resumes.
"""

import socket
from asyncio import base_events
from selectors import _fileobj_to_fd


def _set_ready(fut):
    if not fut.done():
        fut.set_result(None)


class SocketMethods:
    """Mixed into pyloop.Loop between the native core and asyncio's loop."""

    # --- fd watching ------------------------------------------------------------

    # The native _add_reader family takes an int fd; asyncio's takes any file
    # object, and its transports call them with either. A file object closed
    # since it was watched (fileno() -1) is still found by the object itself,
    # as asyncio's selector finds it, so removing its watcher works; for that
    # the loop keeps the objects it watches by fd (_watched_objects). As in
    # asyncio's selector, a registration by int fd (asyncio's transports, the
    # sock_* waits) forgets the object; while no object is kept, that costs
    # one truth test.

    def _fd_of(self, fileobj):
        try:
            return _fileobj_to_fd(fileobj)
        except ValueError:
            for fd, watched in self._watched_objects.items():
                if watched is fileobj:
                    return fd
            raise

    def _watched(self, fileobj):
        fd = _fileobj_to_fd(fileobj)
        if fd is fileobj:
            if self._watched_objects:
                self._watched_objects.pop(fd, None)
        else:
            self._watched_objects[fd] = fileobj
        return fd

    def _unwatch(self, fileobj, unwatch):
        if self.is_closed():
            return False
        fd = self._fd_of(fileobj)
        removed = unwatch(fd)
        if self._watched_objects and self._watchers_of(fd) is None:
            self._watched_objects.pop(fd, None)
        return removed

    def _add_reader(self, fd, callback, *args):
        return self._watch_reader(self._watched(fd), callback, *args)

    def _remove_reader(self, fd):
        return self._unwatch(fd, self._unwatch_reader)

    def _add_writer(self, fd, callback, *args):
        return self._watch_writer(self._watched(fd), callback, *args)

    def _remove_writer(self, fd):
        return self._unwatch(fd, self._unwatch_writer)

    def add_reader(self, fd, callback, *args):
        self._ensure_fd_no_transport(fd)
        self._add_reader(fd, callback, *args)

    def remove_reader(self, fd):
        self._ensure_fd_no_transport(fd)
        return self._remove_reader(fd)

    def add_writer(self, fd, callback, *args):
        self._ensure_fd_no_transport(fd)
        self._add_writer(fd, callback, *args)

    def remove_writer(self, fd):
        self._ensure_fd_no_transport(fd)
        return self._remove_writer(fd)

    async def _wait_ready(self, fd, writable):
        self._ensure_fd_no_transport(fd)
        fut = self.create_future()
        self._watched(fd)  # registered by number from here on
        if writable:
            handle, remove = self._watch_writer(fd, _set_ready, fut), self._unwatch_writer
        else:
            handle, remove = self._watch_reader(fd, _set_ready, fut), self._unwatch_reader
        try:
            await fut
        finally:
            # A cancelled handle was replaced by another waiter on this fd.
            if not handle.cancelled():
                remove(fd)

    # --- sockets -----------------------------------------------------------------

    def _check_socket(self, sock):
        base_events._check_ssl_socket(sock)
        if self._debug and sock.gettimeout() != 0:
            raise ValueError("the socket must be non-blocking")

    async def _read(self, sock, operation, *args):
        self._check_socket(sock)
        while True:
            try:
                return operation(*args)
            except (BlockingIOError, InterruptedError):
                await self._wait_ready(sock.fileno(), False)

    async def sock_recv(self, sock, n):
        return await self._read(sock, sock.recv, n)

    async def sock_recv_into(self, sock, buf):
        return await self._read(sock, sock.recv_into, buf)

    async def sock_recvfrom(self, sock, bufsize):
        return await self._read(sock, sock.recvfrom, bufsize)

    async def sock_recvfrom_into(self, sock, buf, nbytes=0):
        return await self._read(sock, sock.recvfrom_into, buf, nbytes or len(buf))

    async def sock_accept(self, sock):
        conn, address = await self._read(sock, sock.accept)
        conn.setblocking(False)
        return conn, address

    async def sock_sendall(self, sock, data):
        self._check_socket(sock)
        try:
            sent = sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        view = memoryview(data).cast("B")[sent:]
        while view:
            await self._wait_ready(sock.fileno(), True)
            try:
                view = view[sock.send(view):]
            except (BlockingIOError, InterruptedError):
                pass

    async def sock_sendto(self, sock, data, address):
        self._check_socket(sock)
        while True:
            try:
                return sock.sendto(data, address)
            except (BlockingIOError, InterruptedError):
                await self._wait_ready(sock.fileno(), True)

    async def sock_connect(self, sock, address):
        self._check_socket(sock)
        if sock.family == socket.AF_INET or (base_events._HAS_IPv6 and sock.family == socket.AF_INET6):
            resolved = await self._ensure_resolved(
                address, family=sock.family, type=sock.type, proto=sock.proto, loop=self
            )
            _, _, _, _, address = resolved[0]
        try:
            sock.connect(address)
            return
        except (BlockingIOError, InterruptedError):
            pass
        # The connection goes on in the background; the socket turns writable
        # when it is made or has failed.
        await self._wait_ready(sock.fileno(), True)
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err != 0:
            raise OSError(err, f"Connect call failed {address}")
