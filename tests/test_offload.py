"""A busy loop handing its connections' socket work to its I/O thread
(offloading, pyloop/native/offload.cpp), and taking it back when idle.

Each scenario runs in a child process: the I/O threads and PYLOOP_OFFLOAD
are fixed when a process makes its first loop. Every transfer is
checksummed, so a byte lost, doubled or reordered across the I/O thread,
or across a switch between the modes, fails the test. The whole suite also
runs with PYLOOP_OFFLOAD=always in tools/test.
"""

import json
import os
import subprocess
import sys
import textwrap

SCENARIOS = textwrap.dedent(
    """
    import asyncio, hashlib, json, os, random, sys
    import pyloop
    from pyloop import _native

    class Echo(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport = transport
        def data_received(self, data):
            self.transport.write(data)

    class BufferedEcho(asyncio.BufferedProtocol):
        def connection_made(self, transport):
            self.transport, self.buf = transport, bytearray(3000)
        def get_buffer(self, sizehint):
            return self.buf
        def buffer_updated(self, n):
            self.transport.write(self.buf[:n])  # a memoryview of a buffer reused at once

    async def echo_client(port, messages, seed):
        rng = random.Random(seed)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        sent, got = hashlib.sha256(), hashlib.sha256()
        for _ in range(messages):
            data = rng.randbytes(rng.choice((1, 100, 1000, 20000, 200000)))
            sent.update(data)
            writer.write(data)
            got.update(await reader.readexactly(len(data)))
        writer.close()
        await writer.wait_closed()
        return sent.hexdigest() == got.hexdigest()

    async def flow_control():
        # The server writes 8 MiB to a client that reads slowly: pause_writing
        # at the high-water mark, resume_writing below the low one, every byte there.
        loop = asyncio.get_running_loop()
        payload = os.urandom(8 << 20)
        events = []
        class Pusher(asyncio.Protocol):
            def connection_made(self, transport):
                transport.set_write_buffer_limits(high=256 * 1024)
                self.transport = transport
                for i in range(0, len(payload), 65536):
                    transport.write(payload[i:i + 65536])
                transport.close()
            def pause_writing(self):
                events.append(("pause", self.transport.get_write_buffer_size()))
            def resume_writing(self):
                events.append(("resume", self.transport.get_write_buffer_size()))
        server = await loop.create_server(Pusher, "127.0.0.1", 0)
        reader, writer = await asyncio.open_connection(*server.sockets[0].getsockname())
        got = hashlib.sha256()
        while data := await reader.read(100000):
            got.update(data)
            await asyncio.sleep(0.0005)
        writer.close()
        server.close()
        paused = [size for kind, size in events if kind == "pause"]
        return {"intact": got.hexdigest() == hashlib.sha256(payload).hexdigest(),
                "paused_above_high": bool(paused) and all(size > 256 * 1024 for size in paused),
                "resumed": sum(kind == "resume" for kind, _ in events) >= 1}

    async def echo_load(protocol, connections, messages):
        loop = asyncio.get_running_loop()
        server = await loop.create_server(protocol, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        ok = await asyncio.gather(*(echo_client(port, messages, seed) for seed in range(connections)))
        server.close()
        await server.wait_closed()
        return all(ok)

    async def switching():
        # One checksummed conversation goes on while a burst of connections
        # makes the loop busy (it offloads) and after the burst (it takes
        # the I/O back): the modes change under it.
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        stop = asyncio.Event()
        async def conversation():
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            rng, ok, n = random.Random(99), True, 0
            while not stop.is_set() or n < 3000:
                data = rng.randbytes(rng.randint(1, 5000))
                writer.write(data)
                ok = ok and await reader.readexactly(len(data)) == data
                n += 1
            writer.close()
            return ok
        talk = asyncio.ensure_future(conversation())
        modes = []
        async def burst():
            await asyncio.gather(*(echo_client(port, 300, seed) for seed in range(24)))
            modes.append(loop._wake_stats()["offloaded"])
        await burst()
        stop.set()
        ok = await talk
        modes.append(loop._wake_stats()["offloaded"])
        server.close()
        return {"intact": ok, "modes": modes, "switches": loop._wake_stats()["offload_switches"]}

    async def main(which):
        loop = asyncio.get_running_loop()
        if which == "load":
            result = {"proto": await echo_load(Echo, 16, 40), "buffered": await echo_load(BufferedEcho, 16, 40),
                      "flow": await flow_control()}
        else:
            result = await switching()
        return {**result, "offloaded": loop._wake_stats()["offloaded"], **_native.io_stats()}

    print(json.dumps(pyloop.run(main(sys.argv[1]))))
    """
)


def run(which, offload):
    env = dict(os.environ, PYLOOP_IO_THREADS="1", PYLOOP_OFFLOAD=offload)
    out = subprocess.run([sys.executable, "-P", "-c", SCENARIOS, which], env=env, capture_output=True, text=True,
                         timeout=240)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_offloaded_transfers_keep_every_byte_in_order_and_flow_control():
    result = run("load", "always")
    assert result["proto"] and result["buffered"]
    assert result["flow"] == {"intact": True, "paused_above_high": True, "resumed": True}
    # The I/O thread did the reading and the sending.
    assert result["offloaded"] and result["reads"] > 0 and result["sends"] > 0


def test_a_busy_loop_offloads_and_takes_the_io_back_when_idle():
    result = run("switch", "auto")
    assert result["intact"]
    assert result["modes"] == [True, False]
    assert result["switches"] >= 2


def test_never_keeps_the_loop_doing_its_own_io():
    result = run("switch", "never")
    assert result["intact"]
    assert result["modes"] == [False, False] and result["switches"] == 0
