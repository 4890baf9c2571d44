"""loop.sendfile() and loop.sock_sendfile() on an I/O thread.

asyncio's selector loop sends a file over a transport with os.sendfile()
from the loop thread, one call per loop iteration while the socket drains.
When an I/O thread shares pyloop's socket transport, the loop hands it the
file span instead (after any bytes still queued for the socket, with the
same pause of reading and wait for the write buffer to empty that asyncio
has around the send), and the I/O thread calls sendfile(2) as the socket
drains, page cache to socket, reporting the bytes sent. Without an I/O
thread the send is asyncio's own. Arguments are checked, errors raised and
the file position left as asyncio's sock_sendfile does.

sock_sendfile() on a plain socket lends the socket to an I/O thread for the
call (SocketLoan) and has it send the span the same way, where asyncio
sends from the loop thread, one os.sendfile() per loop iteration.
"""

import errno
import io
import os
import sys
from asyncio import exceptions

from . import _native


class FileSend:
    """A file span the I/O thread is sending for a transport (_io_file)."""

    def __init__(self, future):
        self.future = future  # resolved when the span is over
        self.sent = 0
        self.over = False
        self.error = None  # an errno, or the exception to raise

    def progress(self, sent, done, error):
        self.sent += sent
        if done and not self.over:
            self.over = True
            self.error = error or None
            if not self.future.done():
                self.future.set_result(None)

    def exception(self):
        """What the send raises, as asyncio's _sock_sendfile_native_impl."""
        if isinstance(self.error, BaseException):
            return self.error
        if self.sent == 0:
            return exceptions.SendfileNotAvailableError("os.sendfile call failed")
        exc = OSError(self.error, os.strerror(self.error))
        if self.error == errno.ENOTCONN:
            not_connected = ConnectionError("socket is not connected", errno.ENOTCONN)
            not_connected.__cause__ = exc
            return not_connected
        return exc


class SocketLoan:
    """A socket lent to an I/O thread for one sock_sendfile(): a duplicate
    of the caller's fd, so that closing theirs meanwhile can never leave the
    I/O thread sending on another socket that got the same number."""

    def __init__(self, loop, sock):
        self._loop = loop
        self._sock_fd = os.dup(sock.fileno())
        self._io_file = None  # the FileSend under way

    def _io_written(self, written, errno, file_sent, file_done, file_errno):
        if self._io_file is not None and (file_sent or file_done):
            self._io_file.progress(file_sent, file_done, file_errno)

    def close(self):
        _native._end_socket_loan(self)
        os.close(self._sock_fd)


def file_of(file):
    """The file's fd, as asyncio's _sock_sendfile_native checks it."""
    try:
        fileno = file.fileno()
    except (AttributeError, io.UnsupportedOperation):
        raise exceptions.SendfileNotAvailableError("not a regular file") from None
    try:
        size = os.fstat(fileno).st_size
    except OSError:
        raise exceptions.SendfileNotAvailableError("not a regular file") from None
    return fileno, size


# Where a send that ends (done or failed) leaves the file's position: asyncio
# 3.13 moves it past what was sent only if something was; 3.14 always moves
# it to where the send got to, the offset itself if nothing went.
_SEEKS_WHEN_NOTHING_SENT = sys.version_info >= (3, 14)


class SendfileMethods:
    async def _sock_sendfile_native(self, sock, file, offset, count):
        # sock_sendfile has made asyncio's checks of sock and the arguments.
        fileno, size = file_of(file)
        if not (count or size):
            return 0  # an empty file
        try:
            loan = SocketLoan(self, sock)
        except OSError:  # a closed socket, say: asyncio's path says what is wrong
            return await super()._sock_sendfile_native(sock, file, offset, count)
        try:
            if not (_native._lend_socket(loan, self) and _native._loan_sendfile(loan, fileno, offset, count or 0)):
                return await super()._sock_sendfile_native(sock, file, offset, count)
            loan._io_file = send = FileSend(self.create_future())
            return await self._file_sent(send, lambda: _native._loan_sendfile_stop(loan), fileno, offset)
        finally:
            loan.close()

    async def _sendfile_native(self, transp, file, offset, count):
        # asyncio's steps around the send (selector_events), with the send
        # itself on the transport's I/O thread when it has one.
        del self._transports[transp._sock_fd]
        resume_reading = transp.is_reading()
        transp.pause_reading()
        await transp._make_empty_waiter()
        try:
            return await self._send_file(transp, file, offset, count)
        finally:
            transp._reset_empty_waiter()
            if resume_reading:
                transp.resume_reading()
            self._transports[transp._sock_fd] = transp

    async def _send_file(self, transp, file, offset, count):
        sock = transp._sock
        if not hasattr(transp, "_io_sendfile"):
            return await self.sock_sendfile(sock, file, offset, count, fallback=False)
        # sock_sendfile's checks, then _sock_sendfile_native's.
        if self._debug and sock.gettimeout() != 0:
            raise ValueError("the socket must be non-blocking")
        self._check_sendfile_params(sock, file, offset, count)
        fileno, size = file_of(file)
        if not (count or size):
            return 0  # an empty file
        send = FileSend(self.create_future())
        if not transp._io_sendfile(fileno, offset, count or 0):
            return await self.sock_sendfile(sock, file, offset, count, fallback=False)
        transp._io_file = send
        try:
            return await self._file_sent(send, transp._io_sendfile_stop, fileno, offset)
        finally:
            transp._io_file = None

    async def _file_sent(self, send, stop, fileno, offset):
        """Waits for the I/O thread to finish `send`, a span of fileno from
        offset; stop() ends it early. What sock_sendfile returns or raises."""
        try:
            await send.future
        except exceptions.CancelledError:
            # The I/O thread may still read the file: stop it and wait for it
            # to say so, whatever else is cancelled meanwhile. The file
            # position stays where it was, as asyncio leaves it when cancelled.
            if not send.over:
                stop()
            while not send.over:
                send.future = self.create_future()
                try:
                    await send.future
                except exceptions.CancelledError:
                    pass
            raise
        if send.sent > 0 or _SEEKS_WHEN_NOTHING_SENT:
            os.lseek(fileno, offset + send.sent, os.SEEK_SET)
        if send.error:
            raise send.exception()
        return send.sent
