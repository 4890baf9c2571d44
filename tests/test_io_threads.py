"""I/O threads reading sockets while the loop is busy (pyloop/rt/io_thread.hpp).

Each scenario runs in a child process, because the number of I/O threads
(PYLOOP_IO_THREADS) is fixed when a process makes its first loop. The loop
is kept busy (time.sleep inside data_received) while the peer sends, so the
I/O thread has to do the reading; the scenario checks that the protocol
still gets every byte in order, and io_stats() tells whether the I/O thread
read anything.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

SCENARIO = textwrap.dedent(
    """
    import asyncio, hashlib, json, os, socket, sys, time
    import pyloop
    from pyloop import _native

    mode = sys.argv[1]
    total = 4 << 20

    class Sink(asyncio.BufferedProtocol if mode == "buffered" else asyncio.Protocol):
        def __init__(self, done):
            self.done, self.digest, self.size, self.calls = done, hashlib.sha256(), 0, 0
            self.buf = bytearray(1000)  # smaller than a chunk: taken in pieces
        def connection_made(self, transport):
            self.transport = transport
        def got(self, data):
            assert self.transport.is_reading(), "data while paused"
            self.calls += 1
            if self.calls == 1:
                time.sleep(0.2)  # the loop is busy: the peer's bytes pile up
            if mode == "pause" and self.calls % 50 == 1:
                self.transport.pause_reading()
                asyncio.get_running_loop().call_later(0.002, self.transport.resume_reading)
            self.digest.update(data)
            self.size += len(data)
        def data_received(self, data):
            self.got(data)
        def get_buffer(self, sizehint):
            return self.buf
        def buffer_updated(self, n):
            self.got(bytes(self.buf[:n]))
        def eof_received(self):
            self.done.set_result((self.size, self.digest.hexdigest()))

    def send(sock, payload):
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)

    async def main():
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        a, b = socket.socketpair()
        transport, _ = await loop.create_connection(lambda: Sink(done), sock=a)
        payload = os.urandom(total)
        sender = loop.run_in_executor(None, send, b, payload)
        size, digest = await asyncio.wait_for(done, 60)
        await sender
        transport.close()
        b.close()
        return size == total and digest == hashlib.sha256(payload).hexdigest()

    ok = pyloop.run(main())
    print(json.dumps({"ok": ok, **_native.io_stats()}))
    """
)


def run_scenario(mode, io_threads):
    env = dict(os.environ, PYLOOP_IO_THREADS=str(io_threads))
    out = subprocess.run(
        [sys.executable, "-P", "-c", SCENARIO, mode],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("mode", ["protocol", "buffered", "pause"])
def test_io_thread_reads_while_the_loop_is_busy(mode):
    result = run_scenario(mode, 1)
    assert result["ok"]
    assert result["threads"] == 1
    assert result["reads"] > 0
    # Into the loop's own bytes objects while its loans last: all 8 go in
    # the burst that piles up while the loop sleeps, more as it hands them on.
    assert result["loaned_reads"] >= 8


@pytest.mark.parametrize("mode", ["protocol", "buffered"])
def test_without_io_threads_the_loop_reads_alone(mode):
    result = run_scenario(mode, 0)
    assert result["ok"]
    assert result == {"ok": True, "threads": 0, "reads": 0, "loaned_reads": 0, "sends": 0}


# A child's I/O threads, as io_stats() reports them once it has made a loop.
IO_STATS = "import pyloop, json; from pyloop import _native; pyloop.new_event_loop(); print(json.dumps(_native.io_stats()))"


def io_thread_count(env):
    out = subprocess.run([sys.executable, "-P", "-c", IO_STATS], env=env, capture_output=True, text=True, timeout=60,
                         check=True)
    return json.loads(out.stdout)["threads"]


def test_io_thread_count_comes_from_the_environment():
    for value, expected in (("3", 3), ("0", 0)):
        assert io_thread_count(dict(os.environ, PYLOOP_IO_THREADS=value)) == expected


def test_no_io_threads_by_default():
    env = {k: v for k, v in os.environ.items() if k != "PYLOOP_IO_THREADS"}
    assert io_thread_count(env) == 0


FORKED_ECHO = textwrap.dedent(
    """
    import asyncio, os, warnings
    import pyloop
    warnings.simplefilter("ignore", DeprecationWarning)  # fork() in a process with threads

    async def echo():
        async def handle(reader, writer):
            writer.write(await reader.read(100))
            await writer.drain()
            writer.close()
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        reader, writer = await asyncio.open_connection(*server.sockets[0].getsockname())
        writer.write(b"ping")
        got = await reader.read(100)
        writer.close()
        server.close()
        return got.decode()

    print("parent", pyloop.run(echo()), flush=True)
    pid = os.fork()
    if pid == 0:
        print("child", pyloop.run(asyncio.wait_for(echo(), 10)), flush=True)
        os._exit(0)
    print("status", os.waitpid(pid, 0)[1])
    """
)


def test_a_forked_child_does_without_its_parents_io_threads(tmp_path):
    # The I/O threads did not come along: the child's loops must not hand
    # their sockets to them (with PYLOOP_OFFLOAD=always its echo hung).
    env = dict(os.environ, PYLOOP_IO_THREADS="1", PYLOOP_OFFLOAD="always")
    out = subprocess.run([sys.executable, "-P", "-c", FORKED_ECHO], env=env, cwd=tmp_path, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["parent", "ping", "child", "ping", "status", "0"]
