"""Free-threaded CPython: pyloop must not bring the GIL back, and loops in
several threads must run in parallel without shared state."""

import os
import subprocess
import sys
import sysconfig

import pytest

FREE_THREADED = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
needs_free_threading = pytest.mark.skipif(not FREE_THREADED, reason="needs a free-threaded interpreter")


def run_python(code, **env):
    environ = {k: v for k, v in os.environ.items() if k != "PYTHON_GIL"}
    environ.update(env)
    return subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True, env=environ,
                          timeout=120)


@needs_free_threading
def test_import_keeps_gil_disabled():
    out = run_python("import sys, pyloop; print(sys._is_gil_enabled())")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
    assert "GIL" not in out.stderr  # no "enabling the GIL" RuntimeWarning


@needs_free_threading
def test_python_gil_1_turns_it_back_on():
    out = run_python("import sys, pyloop; print(sys._is_gil_enabled())", PYTHON_GIL="1")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True"


@needs_free_threading
def test_loops_in_threads_make_progress_in_parallel():
    # Eight loops, each on its own thread, each doing pure callback work; with
    # the GIL off they run side by side. Checked by outcome (every loop
    # finished, each with its own results), not by timing.
    code = """
import threading, pyloop
N, STEPS = 8, 20000
results = [None] * N
def worker(i):
    loop = pyloop.new_event_loop()
    count = 0
    def step():
        nonlocal count
        count += 1
        if count < STEPS:
            loop.call_soon(step)
        else:
            loop.stop()
    loop.call_soon(step)
    loop.run_forever()
    loop.close()
    results[i] = count
threads = [threading.Thread(target=worker, args=(i,)) for i in range(N)]
[t.start() for t in threads]
[t.join() for t in threads]
import sys
print(results == [STEPS] * N, sys._is_gil_enabled())
"""
    out = run_python(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "False"]


def test_handle_cancel_from_other_threads_while_running(loop_factory):
    # cancel() racing with the loop running the same handles: nothing crashes
    # and nothing is lost: every handle either ran or was cancelled.
    import threading

    loop = loop_factory()
    ran = set()
    handles = []

    def feeder():
        for _ in range(200):
            handles.append(loop.call_soon(ran.add, len(handles)))
        loop.call_soon(feeder if len(handles) < 20000 else loop.stop)

    stop = threading.Event()

    def canceller():
        k = 0
        while not stop.is_set():
            if k < len(handles):
                handles[k].cancel()
                k += 2

    t = threading.Thread(target=canceller)
    t.start()
    loop.call_soon(feeder)
    loop.run_forever()
    stop.set()
    t.join()
    loop.close()
    lost = [i for i, h in enumerate(handles) if i not in ran and not h.cancelled()]
    assert lost == []
    assert ran  # the loop did run callbacks while cancels were racing


def test_loops_in_threads_share_one_io_thread():
    # Four loops on four threads, one I/O thread for all of them: each loop
    # sends 4 MB that its peer reads slowly (the I/O thread sends what
    # blocks, submitted by four loop threads at once) and receives 2 MB
    # while busy (the I/O thread reads into each loop's own loaned bytes).
    # Every byte arrives, checksummed, on both builds; on 3.13t, GIL off.
    code = """
import asyncio, hashlib, os, socket, threading, time, pyloop
from pyloop import _native
N = 4
results = [None] * N

def tcp_pair():
    with socket.create_server(("127.0.0.1", 0)) as server:
        peer = socket.create_connection(server.getsockname())
        ours, _ = server.accept()
    return ours, peer

def peer_side(peer, incoming, outgoing, done):
    time.sleep(0.1)
    peer.sendall(outgoing)
    got = hashlib.sha256()
    size = 0
    while size < len(incoming):
        data = peer.recv(1 << 16)
        if not data:
            break
        got.update(data)
        size += len(data)
    done.append(got.hexdigest() == hashlib.sha256(incoming).hexdigest())
    peer.close()

class Sink(asyncio.Protocol):
    def __init__(self, want, finished):
        self.digest, self.size, self.want, self.finished = hashlib.sha256(), 0, want, finished
    def data_received(self, data):
        if self.size == 0:
            time.sleep(0.05)  # busy: the rest is the I/O thread's to read
        self.digest.update(data)
        self.size += len(data)
        if self.size >= self.want and not self.finished.done():
            self.finished.set_result(self.digest.hexdigest())

def worker(i):
    async def main():
        loop = asyncio.get_running_loop()
        ours, peer = tcp_pair()
        outgoing, incoming = os.urandom(4 << 20), os.urandom(2 << 20)
        finished = loop.create_future()
        transport, _ = await loop.create_connection(lambda: Sink(len(incoming), finished), sock=ours)
        done = []
        thread = threading.Thread(target=peer_side, args=(peer, outgoing, incoming, done))
        thread.start()
        for at in range(0, len(outgoing), 100000):
            transport.write(outgoing[at:at + 100000])
            await asyncio.sleep(0)
        received = await asyncio.wait_for(finished, 60)
        transport.close()
        await loop.run_in_executor(None, thread.join)
        return done == [True] and received == hashlib.sha256(incoming).hexdigest()
    results[i] = pyloop.run(main())

threads = [threading.Thread(target=worker, args=(i,)) for i in range(N)]
[t.start() for t in threads]
[t.join() for t in threads]
stats = _native.io_stats()
print(results == [True] * N, stats["threads"], stats["sends"] > 0, stats["loaned_reads"] > 0)
"""
    out = run_python(code, PYLOOP_IO_THREADS="1")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "1", "True", "True"]
