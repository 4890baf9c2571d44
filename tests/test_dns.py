"""loop.getaddrinfo must return exactly what socket.getaddrinfo returns, and
raise what it raises."""

import asyncio
import socket

import pytest

CASES = [
    ("localhost", 80, {}),
    ("127.0.0.1", "8080", {}),
    ("::1", 443, {"family": socket.AF_INET6}),
    (None, 0, {"flags": socket.AI_PASSIVE}),
    (None, 9000, {"family": socket.AF_INET, "type": socket.SOCK_STREAM, "flags": socket.AI_PASSIVE}),
    (b"localhost", b"http", {"type": socket.SOCK_STREAM}),
    ("localhost", None, {"proto": socket.IPPROTO_TCP}),
    ("127.0.0.1", 53, {"flags": socket.AI_CANONNAME | socket.AI_NUMERICHOST}),
]


@pytest.mark.parametrize("host,port,kwargs", CASES)
def test_getaddrinfo_matches_socket_module(loop, host, port, kwargs):
    expected = socket.getaddrinfo(host, port, **kwargs)
    got = loop.run_until_complete(loop.getaddrinfo(host, port, **kwargs))
    assert got == expected
    assert [type(entry[0]) for entry in got] == [type(entry[0]) for entry in expected]


def test_getaddrinfo_unknown_host_raises_gaierror(loop):
    with pytest.raises(socket.gaierror) as expected:
        socket.getaddrinfo("no-such-host.invalid", 80)
    with pytest.raises(socket.gaierror) as got:
        loop.run_until_complete(loop.getaddrinfo("no-such-host.invalid", 80))
    assert got.value.errno == expected.value.errno


@pytest.mark.parametrize(
    "host,port,error",
    [(1, 80, TypeError), ("localhost", 1.5, OSError), ("localhost", [80], OSError)],
)
def test_getaddrinfo_bad_arguments(loop, host, port, error):
    with pytest.raises(error):
        socket.getaddrinfo(host, port)
    with pytest.raises(error):
        loop.run_until_complete(loop.getaddrinfo(host, port))


def test_getaddrinfo_bad_service_name(loop):
    with pytest.raises(socket.gaierror):
        loop.run_until_complete(loop.getaddrinfo("localhost", "no-such-service"))


def test_cancelled_getaddrinfo_is_harmless(loop):
    async def main():
        task = asyncio.ensure_future(loop.getaddrinfo("localhost", 80))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # The lookup still finishes in the background; the loop carries on.
        return await loop.getaddrinfo("127.0.0.1", 1)

    assert loop.run_until_complete(main())


def test_getaddrinfo_many_at_once(loop):
    async def main():
        return await asyncio.gather(*(loop.getaddrinfo("127.0.0.1", port) for port in range(1, 200)))

    results = loop.run_until_complete(main())
    assert [r[0][4][1] for r in results] == list(range(1, 200))


def test_loop_closed_with_lookups_in_flight():
    import gc

    import pyloop

    loop = pyloop.new_event_loop()
    # Lookups still running when the loop closes post into an inbox nobody
    # drains; their futures are dropped, never settled, and nothing crashes.
    futures = [loop._resolve(b"localhost", b"80", 0, 0, 0, 0) for _ in range(20)]
    loop.close()
    del loop
    gc.collect()
    assert not any(f.done() for f in futures)


NAMEINFO_CASES = [
    (("127.0.0.1", 80), 0),
    (("127.0.0.1", 80), socket.NI_NUMERICHOST | socket.NI_NUMERICSERV),
    (("::1", 443, 0, 0), 0),
    (("::1", 443), socket.NI_NUMERICSERV),
    (("127.0.0.1", True), 0),
]

BAD_SOCKADDRS = [
    ("127.0.0.1", 80, 0, 0),  # IPv4 given as a 4-tuple
    ("x", "y"),
    [1],
    (1, 80),
    (b"127.0.0.1", 80),
    ("127.0.0.1",),
    ("127.0.0.1", 80, 1, 2, 3),
    ("127.0.0.1", 80, "a"),
    ("127.0.0.1", 2**40),
    ("::1", 1, 2**21, 0),
    ("no-such-host.invalid", 80),
]


@pytest.mark.parametrize("sockaddr,flags", NAMEINFO_CASES)
def test_getnameinfo_matches_socket_module(loop, sockaddr, flags):
    expected = socket.getnameinfo(sockaddr, flags)
    assert loop.run_until_complete(loop.getnameinfo(sockaddr, flags)) == expected


@pytest.mark.parametrize("sockaddr", BAD_SOCKADDRS, ids=repr)
def test_getnameinfo_errors_match_socket_module(loop, sockaddr):
    with pytest.raises(Exception) as expected:
        socket.getnameinfo(sockaddr, 0)
    with pytest.raises(Exception) as got:
        loop.run_until_complete(loop.getnameinfo(sockaddr, 0))
    assert type(got.value) is type(expected.value)
    assert str(got.value) == str(expected.value)
