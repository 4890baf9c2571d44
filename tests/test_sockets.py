"""add_reader/add_writer and the low-level sock_* API."""

import asyncio
import hashlib
import os
import random
import socket

import pytest
from conftest import fd_count


@pytest.fixture
def pair():
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    yield a, b
    a.close()
    b.close()


def run_iterations(loop, n=3):
    for _ in range(n):
        loop.call_soon(loop.stop)
        loop.run_forever()


def test_reader_runs_only_when_readable_and_while_readable(loop, pair):
    a, b = pair
    calls = []
    loop.add_reader(a, calls.append, "r")
    run_iterations(loop)
    assert calls == []  # nothing to read: the callback must not run
    b.send(b"x")
    run_iterations(loop, 3)
    assert calls == ["r", "r", "r"]  # level-triggered: again while unread
    a.recv(1)
    calls.clear()
    run_iterations(loop)
    assert calls == []
    assert loop.remove_reader(a) is True
    assert loop.remove_reader(a) is False


def test_writer_runs_while_writable(loop, pair):
    a, _ = pair
    calls = []
    loop.add_writer(a.fileno(), calls.append, "w")
    run_iterations(loop, 2)
    assert calls == ["w", "w"]
    assert loop.remove_writer(a.fileno()) is True
    calls.clear()
    run_iterations(loop)
    assert calls == []


def test_reader_and_writer_on_one_fd(loop, pair):
    a, b = pair
    seen = []
    loop.add_reader(a, seen.append, "r")
    loop.add_writer(a, seen.append, "w")
    b.send(b"x")
    run_iterations(loop, 1)
    assert sorted(seen) == ["r", "w"]
    assert loop.remove_writer(a)
    seen.clear()
    run_iterations(loop, 1)
    assert seen == ["r"]
    assert loop.remove_reader(a)


def test_new_reader_replaces_old(loop, pair):
    a, b = pair
    seen = []
    loop.add_reader(a, seen.append, "old")
    loop.add_reader(a, seen.append, "new")
    b.send(b"x")
    run_iterations(loop, 1)
    assert seen == ["new"]
    loop.remove_reader(a)


def test_bad_file_objects(loop):
    with pytest.raises(ValueError):
        loop.add_reader(-1, lambda: None)
    with pytest.raises(ValueError):
        loop.add_reader(object(), lambda: None)
    assert loop.remove_reader(10_000) is False


def test_watching_a_closed_fd_is_oserror(loop):
    r, w = os.pipe()
    os.close(r)
    os.close(w)
    with pytest.raises(OSError):
        loop.add_reader(r, lambda: None)


def test_a_socket_closed_while_watched_is_still_found_by_itself(loop):
    # asyncio's selector looks a file object whose fileno() is -1 up by the
    # object it was registered with; anyio removes its watchers that way.
    # (With both a reader and a writer on the closed fd, asyncio's removing
    # one fails with EBADF from epoll_ctl and keeps both; pyloop removes it.)
    read_a, read_b = socket.socketpair()
    write_a, write_b = socket.socketpair()
    other_a, other_b = socket.socketpair()
    loop.add_reader(read_a, lambda: None)
    loop.add_writer(write_a, lambda: None)
    loop.add_reader(other_a.fileno(), lambda: None)
    read_a.close()
    write_a.close()
    assert loop.remove_reader(read_a) is True
    assert loop.remove_writer(write_a) is True
    with pytest.raises(ValueError, match="Invalid file descriptor: -1"):
        loop.remove_reader(read_a)  # no longer watched: nothing to find it by
    with pytest.raises(ValueError, match="Invalid file descriptor: -1"):
        loop.remove_writer(write_a)
    assert loop.remove_reader(other_a.fileno()) is True
    loop.close()
    assert loop.remove_reader(read_a) is False  # a closed loop asks nothing
    for s in (read_b, write_b, other_a, other_b):
        s.close()


def test_a_closed_socket_is_not_found_once_its_fd_was_waited_on_by_number(loop):
    # sock_recv registers the fd by number, which forgets the object, as in
    # asyncio's selector: a later remove_reader(closed socket) must not reach
    # a new socket that took the same fd number and is being waited on.
    a, b = socket.socketpair()
    for s in (a, b):
        s.setblocking(False)
    loop.add_reader(a, lambda: None)

    async def main():
        receive = asyncio.ensure_future(loop.sock_recv(a, 1))
        await asyncio.sleep(0.01)
        b.send(b"x")
        assert await receive == b"x"
        number = a.fileno()
        a.close()
        c, d = socket.socketpair()
        if c.fileno() != number:  # the kernel gave it another number: move it
            os.dup2(c.fileno(), number)
            c.close()
            c = socket.socket(fileno=number)
        c.setblocking(False)
        receive = asyncio.ensure_future(loop.sock_recv(c, 1))
        await asyncio.sleep(0.01)
        with pytest.raises(ValueError, match="Invalid file descriptor: -1"):
            loop.remove_reader(a)
        d.send(b"y")
        assert await asyncio.wait_for(receive, 5) == b"y"  # its waiter is still there
        for s in (b, c, d):
            s.close()

    loop.run_until_complete(main())


def test_add_reader_on_closed_loop(loop, pair):
    loop.close()
    with pytest.raises(RuntimeError, match="closed"):
        loop.add_reader(pair[0], lambda: None)
    assert loop.remove_reader(pair[0]) is False


def test_reader_callback_exception_goes_to_handler(loop, pair):
    a, b = pair
    errors = []
    loop.set_exception_handler(lambda loop, ctx: errors.append(ctx["exception"]))

    def bad():
        loop.remove_reader(a)
        raise ValueError("reader failed")

    loop.add_reader(a, bad)
    b.send(b"x")
    run_iterations(loop, 2)
    assert [type(e) for e in errors] == [ValueError]


async def _connected_pair(loop):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.setblocking(False)
    client = socket.socket()
    client.setblocking(False)
    accept = asyncio.ensure_future(loop.sock_accept(server))
    await loop.sock_connect(client, server.getsockname())
    conn, _ = await accept
    server.close()
    return client, conn


def test_sock_roundtrip_many_sizes_keeps_every_byte(loop):
    rng = random.Random(7)
    chunks = [rng.randbytes(rng.choice([1, 7, 1000, 65536, 300_000])) for _ in range(60)]
    expected = hashlib.sha256(b"".join(chunks)).hexdigest()
    total = sum(map(len, chunks))

    async def main():
        client, conn = await _connected_pair(loop)
        assert conn.gettimeout() == 0

        async def reader():
            digest, got = hashlib.sha256(), 0
            buf = bytearray(70_000)
            while got < total:
                if rng.random() < 0.5:
                    data = await loop.sock_recv(conn, 70_000)
                else:
                    n = await loop.sock_recv_into(conn, buf)
                    data = bytes(buf[:n])
                digest.update(data)
                got += len(data)
            return digest.hexdigest()

        task = asyncio.ensure_future(reader())
        for chunk in chunks:
            await loop.sock_sendall(client, chunk)
        result = await task
        client.close()
        conn.close()
        return result

    before = fd_count()
    assert loop.run_until_complete(main()) == expected
    assert fd_count() == before


def test_sock_recv_eof_returns_empty(loop):
    async def main():
        client, conn = await _connected_pair(loop)
        client.close()
        data = await loop.sock_recv(conn, 10)
        conn.close()
        return data

    assert loop.run_until_complete(main()) == b""


def test_sock_connect_refused(loop):
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now

    async def main():
        sock = socket.socket()
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, ("127.0.0.1", port))
        finally:
            sock.close()

    with pytest.raises(ConnectionRefusedError):
        loop.run_until_complete(main())


def test_cancelled_sock_recv_unregisters(loop, pair):
    a, b = pair

    async def main():
        task = asyncio.ensure_future(loop.sock_recv(a, 10))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # The wait's watcher is gone: a new reader is the only one.
        b.send(b"x")
        return await loop.sock_recv(a, 10)

    assert loop.run_until_complete(main()) == b"x"
    assert loop.remove_reader(a) is False


def test_sock_udp_sendto_recvfrom(loop):
    async def main():
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for s in (rx, tx):
            s.setblocking(False)
        rx.bind(("127.0.0.1", 0))
        recv = asyncio.ensure_future(loop.sock_recvfrom(rx, 100))
        await asyncio.sleep(0)
        await loop.sock_sendto(tx, b"ping", rx.getsockname())
        data, addr = await recv
        buf = bytearray(10)
        await loop.sock_sendto(tx, b"pong", rx.getsockname())
        n, _ = await loop.sock_recvfrom_into(rx, buf)
        assert addr[1] == tx.getsockname()[1]
        rx.close()
        tx.close()
        return data, bytes(buf[:n])

    assert loop.run_until_complete(main()) == (b"ping", b"pong")


def test_sock_sendfile(loop, tmp_path):
    payload = os.urandom(200_000)
    path = tmp_path / "data.bin"
    path.write_bytes(payload)

    async def main():
        client, conn = await _connected_pair(loop)

        async def reader():
            got = b""
            while len(got) < 150_000:
                got += await loop.sock_recv(conn, 65536)
            return got

        task = asyncio.ensure_future(reader())
        with open(path, "rb") as f:
            sent = await loop.sock_sendfile(client, f, offset=50_000)
        got = await task
        client.close()
        conn.close()
        return sent, got

    sent, got = loop.run_until_complete(main())
    assert sent == 150_000
    assert got == payload[50_000:]


def test_debug_mode_rejects_blocking_socket(loop):
    loop.set_debug(True)
    sock = socket.socket()
    try:
        with pytest.raises(ValueError, match="non-blocking"):
            loop.run_until_complete(loop.sock_recv(sock, 1))
    finally:
        sock.close()
