"""Bad input to every kind of public method: wrong types, closed objects,
out-of-range values, invalid addresses, non-callables. Each case runs on a
fresh asyncio loop and a fresh pyloop loop, and pyloop must end it exactly as
asyncio's does: the same exception type (and errno for OSError), or none,
with no hang and no fd left open. Where asyncio takes bad input and fails on
it in the next iteration (call_at with a str deadline), pyloop may fail at
once: the case runs one iteration after the call, and the type must match."""

import asyncio
import contextlib
import gc
import signal
import socket
import tempfile

import pytest
from conftest import LOOP_FACTORIES, fd_count

pytestmark = pytest.mark.timeout(60)


async def nothing():
    pass


def coroutine_function():
    return nothing


class Env:
    """What a case may need: a listening socket, a connected pair, a file."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.setblocking(False)
        self.port = self.listener.getsockname()[1]
        self.a, self.b = socket.socketpair()
        for s in (self.a, self.b):
            s.setblocking(False)
        self.closed = socket.socket()
        self.closed.close()
        self.blocking = socket.socket()
        self.text = tempfile.TemporaryFile("w+")
        self.binary = tempfile.TemporaryFile("w+b")
        self.binary.write(b"x" * 100)
        self.binary.flush()

    def close(self):
        for thing in (self.listener, self.a, self.b, self.blocking, self.text, self.binary):
            thing.close()


async def transport_pair(loop, env):
    """A client transport connected to env's listener, and its protocol."""
    transport, protocol = await loop.create_connection(asyncio.Protocol, "127.0.0.1", env.port)
    return transport, protocol


async def transport_case(loop, env, act):
    transport, _ = await transport_pair(loop, env)
    try:
        act(transport)
    finally:
        transport.abort()
        await asyncio.sleep(0)


def transport_after_eof(transport):
    transport.write_eof()
    transport.write(b"x")


def bad_sleep_time():
    return asyncio.sleep("1")


# name: (case, run) where run is "sync" (called with the loop not running)
# or "async" (awaited inside it, under a 10 s timeout).
CASES = {
    # --- callbacks and timers
    "call_soon(non-callable)": (lambda loop, env: loop.call_soon(1), "sync"),
    "call_soon(coroutine function)": (lambda loop, env: loop.call_soon(nothing), "sync"),
    "call_soon(context=str)": (lambda loop, env: loop.call_soon(print, context="x"), "sync"),
    "call_later(str delay)": (lambda loop, env: loop.call_later("1", print), "sync"),
    "call_later(None delay)": (lambda loop, env: loop.call_later(None, print), "sync"),
    "call_later(non-callable)": (lambda loop, env: loop.call_later(1, 1), "sync"),
    "call_at(str when)": (lambda loop, env: loop.call_at("x", print), "sync"),
    "call_at(no callback)": (lambda loop, env: loop.call_at(1.0), "sync"),
    "call_soon_threadsafe(non-callable)": (lambda loop, env: loop.call_soon_threadsafe(None), "sync"),
    "call_soon_threadsafe(unknown keyword)": (lambda loop, env: loop.call_soon_threadsafe(print, x=1), "sync"),
    "call_soon(closed loop)": (lambda loop, env: (loop.close(), loop.call_soon(print)), "sync"),
    "call_later(closed loop)": (lambda loop, env: (loop.close(), loop.call_later(1, print)), "sync"),
    # --- running
    "run_until_complete(int)": (lambda loop, env: loop.run_until_complete(42), "sync"),
    "run_until_complete(closed loop)": (lambda loop, env: (loop.close(), loop.run_until_complete(nothing())),
                                        "sync"),
    "run_until_complete(while running)": (lambda loop, env: loop.run_until_complete(nothing()), "async"),
    "run_forever(while running)": (lambda loop, env: loop.run_forever(), "async"),
    "close(while running)": (lambda loop, env: loop.close(), "async"),
    "sleep(str)": (lambda loop, env: bad_sleep_time(), "async-await"),
    # --- tasks and futures
    "create_task(int)": (lambda loop, env: loop.create_task(42), "sync"),
    "create_task(coroutine function)": (lambda loop, env: loop.create_task(nothing), "sync"),
    "set_task_factory(int)": (lambda loop, env: loop.set_task_factory(1), "sync"),
    "set_exception_handler(int)": (lambda loop, env: loop.set_exception_handler(1), "sync"),
    "call_exception_handler(str)": (lambda loop, env: loop.call_exception_handler("x"), "sync"),
    "set_default_executor(int)": (lambda loop, env: loop.set_default_executor(1), "sync"),
    "run_in_executor(non-callable)": (lambda loop, env: loop.run_in_executor(None, 1), "async-await"),
    "run_in_executor(coroutine function)": (lambda loop, env: loop.run_in_executor(None, nothing),
                                            "async-await"),
    # --- fd watching
    "add_reader(-1)": (lambda loop, env: loop.add_reader(-1, print), "sync"),
    "add_reader(str)": (lambda loop, env: loop.add_reader("x", print), "sync"),
    "add_reader(closed socket)": (lambda loop, env: loop.add_reader(env.closed, print), "sync"),
    "add_reader(closed fd)": (lambda loop, env: loop.add_reader(10_000, print), "sync"),
    "add_writer(non-callable)": (lambda loop, env: (loop.add_writer(env.a, 1), loop.remove_writer(env.a)),
                                 "sync"),
    "remove_reader(str)": (lambda loop, env: loop.remove_reader("x"), "sync"),
    "remove_writer(unwatched closed socket)": (lambda loop, env: loop.remove_writer(env.closed), "sync"),
    # --- sock_*
    "sock_recv(negative)": (lambda loop, env: loop.sock_recv(env.a, -1), "async-await"),
    "sock_recv(str size)": (lambda loop, env: loop.sock_recv(env.a, "1"), "async-await"),
    "sock_recv(not a socket)": (lambda loop, env: loop.sock_recv(object(), 1), "async-await"),
    "sock_recv(closed socket)": (lambda loop, env: loop.sock_recv(env.closed, 1), "async-await"),
    "sock_recv_into(bytes)": (lambda loop, env: loop.sock_recv_into(env.a, b"xx"), "async-await"),
    "sock_sendall(str)": (lambda loop, env: loop.sock_sendall(env.a, "text"), "async-await"),
    "sock_sendall(closed socket)": (lambda loop, env: loop.sock_sendall(env.closed, b"x"), "async-await"),
    "sock_sendto(bad address)": (lambda loop, env: loop.sock_sendto(env.a, b"x", ("nope", "x")),
                                 "async-await"),
    "sock_connect(bad address type)": (lambda loop, env: loop.sock_connect(env.blocking, "nowhere"),
                                       "async-await"),
    "sock_connect(port out of range)": (lambda loop, env: loop.sock_connect(env.blocking, ("127.0.0.1", 70000)),
                                        "async-await"),
    "sock_accept(not listening)": (lambda loop, env: loop.sock_accept(env.a), "async-await"),
    "sock_sendfile(text file)": (lambda loop, env: loop.sock_sendfile(env.a, env.text), "async-await"),
    "sock_sendfile(negative offset)": (lambda loop, env: loop.sock_sendfile(env.a, env.binary, -1),
                                       "async-await"),
    "sock_sendfile(zero count)": (lambda loop, env: loop.sock_sendfile(env.a, env.binary, 0, 0),
                                  "async-await"),
    # --- names
    "getaddrinfo(int host)": (lambda loop, env: loop.getaddrinfo(123, 80), "async-await"),
    "getaddrinfo(bad service)": (lambda loop, env: loop.getaddrinfo("127.0.0.1", "no-such-service"),
                                 "async-await"),
    "getaddrinfo(bad family)": (lambda loop, env: loop.getaddrinfo("127.0.0.1", 80, family=12345),
                                "async-await"),
    "getnameinfo(short tuple)": (lambda loop, env: loop.getnameinfo(("127.0.0.1",)), "async-await"),
    "getnameinfo(str)": (lambda loop, env: loop.getnameinfo("127.0.0.1"), "async-await"),
    # --- connections and servers
    "create_connection(host and sock)": (
        lambda loop, env: loop.create_connection(asyncio.Protocol, "127.0.0.1", env.port, sock=env.a),
        "async-await"),
    "create_connection(no host, no sock)": (lambda loop, env: loop.create_connection(asyncio.Protocol),
                                            "async-await"),
    "create_connection(handshake timeout, no ssl)": (
        lambda loop, env: loop.create_connection(asyncio.Protocol, "127.0.0.1", env.port,
                                                 ssl_handshake_timeout=1), "async-await"),
    "create_connection(str port)": (lambda loop, env: loop.create_connection(asyncio.Protocol, "127.0.0.1", "x"),
                                    "async-await"),
    "create_connection(refused)": (lambda loop, env: loop.create_connection(asyncio.Protocol, "127.0.0.1", 1),
                                   "async-await"),
    "create_connection(ssl=str)": (lambda loop, env: loop.create_connection(asyncio.Protocol, "127.0.0.1",
                                                                            env.port, ssl="yes"), "async-await"),
    "create_server(host and sock)": (
        lambda loop, env: loop.create_server(asyncio.Protocol, "127.0.0.1", 0, sock=env.listener),
        "async-await"),
    "create_server(port in use)": (lambda loop, env: loop.create_server(asyncio.Protocol, "127.0.0.1", env.port),
                                   "async-await"),
    "create_server(datagram sock)": (
        lambda loop, env: loop.create_server(asyncio.Protocol, sock=socket.socket(type=socket.SOCK_DGRAM)),
        "async-await-closing"),
    "create_unix_server(missing folder)": (
        lambda loop, env: loop.create_unix_server(asyncio.Protocol, "/nonexistent/folder/sock"), "async-await"),
    "create_unix_connection(no such path)": (
        lambda loop, env: loop.create_unix_connection(asyncio.Protocol, "/nonexistent/sock"), "async-await"),
    "create_datagram_endpoint(bad family)": (
        lambda loop, env: loop.create_datagram_endpoint(asyncio.DatagramProtocol, family=12345), "async-await"),
    "create_datagram_endpoint(str local_addr)": (
        lambda loop, env: loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr="x"),
        "async-await"),
    "create_datagram_endpoint(stream sock)": (
        lambda loop, env: loop.create_datagram_endpoint(asyncio.DatagramProtocol, sock=env.a), "async-await"),
    "connect_accepted_socket(datagram sock)": (
        lambda loop, env: loop.connect_accepted_socket(asyncio.Protocol, socket.socket(type=socket.SOCK_DGRAM)),
        "async-await-closing"),
    "connect_read_pipe(int)": (lambda loop, env: loop.connect_read_pipe(asyncio.Protocol, 5), "async-await"),
    # --- transports
    "transport.write(str)": (lambda loop, env: transport_case(loop, env, lambda t: t.write("text")), "async-await"),
    "transport.write after write_eof": (lambda loop, env: transport_case(loop, env, transport_after_eof),
                                        "async-await"),
    "transport.writelines(str items)": (lambda loop, env: transport_case(loop, env, lambda t: t.writelines(["a"])),
                                        "async-await"),
    "transport.set_write_buffer_limits(high < low)": (
        lambda loop, env: transport_case(loop, env, lambda t: t.set_write_buffer_limits(high=1, low=2)),
        "async-await"),
    "transport.set_write_buffer_limits(negative)": (
        lambda loop, env: transport_case(loop, env, lambda t: t.set_write_buffer_limits(high=-1)), "async-await"),
    "transport.write after close": (lambda loop, env: transport_case(loop, env, lambda t: (t.close(), t.write(b"x"))),
                                    "async-await"),
    "transport.pause_reading after close": (
        lambda loop, env: transport_case(loop, env, lambda t: (t.close(), t.pause_reading())), "async-await"),
    "sendfile(text file)": (lambda loop, env: sendfile_case(loop, env, env.text), "async-await"),
    "sendfile(negative count)": (lambda loop, env: sendfile_case(loop, env, env.binary, count=-1), "async-await"),
    "start_tls(ssl=str)": (lambda loop, env: start_tls_case(loop, env), "async-await"),
    # --- signals and subprocesses
    "add_signal_handler(out of range)": (lambda loop, env: loop.add_signal_handler(99999, print), "sync"),
    "add_signal_handler(SIGKILL)": (lambda loop, env: loop.add_signal_handler(signal.SIGKILL, print), "sync"),
    "add_signal_handler(str)": (lambda loop, env: loop.add_signal_handler("x", print), "sync"),
    "add_signal_handler(non-callable)": (lambda loop, env: loop.add_signal_handler(signal.SIGUSR1, 1), "sync"),
    "add_signal_handler(coroutine function)": (
        lambda loop, env: loop.add_signal_handler(signal.SIGUSR1, nothing), "sync"),
    "remove_signal_handler(out of range)": (lambda loop, env: loop.remove_signal_handler(99999), "sync"),
    "subprocess_exec(text mode)": (
        lambda loop, env: loop.subprocess_exec(asyncio.SubprocessProtocol, "true", universal_newlines=True),
        "async-await"),
    "subprocess_shell(list)": (lambda loop, env: loop.subprocess_shell(asyncio.SubprocessProtocol, ["true"]),
                               "async-await"),
    "subprocess_exec(missing program)": (
        lambda loop, env: loop.subprocess_exec(asyncio.SubprocessProtocol, "/no/such/program"), "async-await"),
}


async def sendfile_case(loop, env, file, count=None):
    transport, _ = await transport_pair(loop, env)
    try:
        await loop.sendfile(transport, file, count=count)
    finally:
        transport.abort()
        await asyncio.sleep(0)


async def start_tls_case(loop, env):
    transport, protocol = await transport_pair(loop, env)
    try:
        await loop.start_tls(transport, protocol, "not a context")
    finally:
        transport.abort()
        await asyncio.sleep(0)


def outcome(loop_name, name):
    """How the case ends on a fresh loop: 'ok', or the exception's type name
    (with its errno for an OSError)."""
    case, run = CASES[name]
    gc.collect()
    before = fd_count()
    env = Env()
    loop = LOOP_FACTORIES[loop_name]()
    try:
        if run == "sync":
            case(loop, env)
            # What asyncio accepts and fails on later, it fails on in the
            # next iteration (a timer at a str deadline): run one.
            if not loop.is_closed():
                loop.run_until_complete(asyncio.sleep(0))
        else:
            async def main():
                result = case(loop, env)
                if run.startswith("async-await"):
                    result = await result
                if hasattr(result, "close") and not isinstance(result, socket.socket):
                    result.close()  # a server or transport made despite the bad input
                return result

            loop.run_until_complete(asyncio.wait_for(main(), 10))
        result = "ok"
    except asyncio.TimeoutError:
        result = "hang"
    except Exception as error:
        result = type(error).__name__
        if isinstance(error, OSError) and error.errno is not None:
            result += f" errno {error.errno}"
    finally:
        if loop.is_running():
            loop.stop()
        for handler_signal in (signal.SIGUSR1,):
            if not loop.is_closed():
                loop.remove_signal_handler(handler_signal)
        if not loop.is_closed():
            # A case may leave asyncio's loop unable to run (call_at with a
            # str deadline): the cleanup's own error is not the outcome.
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()
        env.close()
    leaked = fd_count() - before
    return result, leaked


@pytest.fixture(scope="module", autouse=True)
def io_threads_started():
    """pyloop's I/O threads are the process's, started with its first
    connection and kept: start them before the first count of fds."""
    outcome("pyloop", "transport.write after close")


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_ends_as_on_asyncio(name):
    on_asyncio = outcome("asyncio", name)
    on_pyloop = outcome("pyloop", name)
    assert on_pyloop == on_asyncio
    assert on_pyloop[0] != "hang"
