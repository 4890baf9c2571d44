"""sock_sendfile throughput and the loop thread's CPU time during it:

    python -P bench/sendfile.py [--rounds 5] [--mib 256] [--loops asyncio,pyloop-io0,pyloop-io1]

Each sample is a fresh process that sends a file of --mib MiB (in the page
cache) over a Unix socketpair to a thread that reads and drops it, with
loop.sock_sendfile(). It reports the wall time and the CPU time of the loop
thread alone (time.thread_time() around the call): asyncio sends with
os.sendfile() from the loop thread, pyloop-io1 has its I/O thread do it
(pyloop/_sendfile.py), pyloop-io0 has no I/O thread and sends as asyncio
does. Loops are interleaved within each round; medians and the spread
(min..max) over rounds are printed. uvloop can be named too: its
sock_sendfile gives no result on this machine (a sample that takes over
60 s is reported so), so it is not in the default list.
"""

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

VARIANTS = {
    "asyncio": ("asyncio", {}),
    "uvloop": ("uvloop", {}),
    "pyloop-io0": ("pyloop", {"PYLOOP_IO_THREADS": "0"}),
    "pyloop-io1": ("pyloop", {"PYLOOP_IO_THREADS": "1"}),
}


def drain(sock):
    while sock.recv(1 << 20):
        pass


async def send_once(path, size):
    loop = asyncio.get_running_loop()
    ours, peer = socket.socketpair()
    ours.setblocking(False)
    reader = threading.Thread(target=drain, args=(peer,))
    reader.start()
    with open(path, "rb") as file:  # noqa: ASYNC230 (before the measured call)
        cpu, wall = time.thread_time(), time.perf_counter()
        sent = await loop.sock_sendfile(ours, file, 0, size, fallback=False)
        cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
    ours.close()
    reader.join()
    peer.close()
    if sent != size:
        raise SystemExit(f"sent {sent} of {size} bytes")
    return {"wall_s": wall, "loop_cpu_s": cpu}


def sample(loop_name, path, size):
    """Runs in the sample's own process: prints its result as JSON."""
    if loop_name == "pyloop":
        import pyloop

        run = pyloop.run
    elif loop_name == "uvloop":
        import uvloop

        run = uvloop.run
    else:
        run = asyncio.run
    try:
        print(json.dumps(run(send_once(path, size))))
    except (NotImplementedError, asyncio.SendfileNotAvailableError) as exc:
        print(json.dumps({"unavailable": f"{type(exc).__name__}: {exc}"}))


def run_sample(loop_name, env, path, size, timeout=60):
    try:
        out = subprocess.run(
            [sys.executable, "-P", __file__, "--sample", loop_name, path, str(size)],
            env={**os.environ, **env}, capture_output=True, text=True, check=False, timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return {"unavailable": f"no result in {timeout} s"}
    lines = out.stdout.strip().splitlines()
    if out.returncode == 0 and lines:
        return json.loads(lines[-1])
    return {"unavailable": (out.stderr.strip().splitlines() or ["failed"])[-1]}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--loops", default="asyncio,pyloop-io0,pyloop-io1")
    parser.add_argument("--sample", nargs=3, metavar=("LOOP", "PATH", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sample:
        return sample(args.sample[0], args.sample[1], int(args.sample[2]))
    size = args.mib << 20
    variants = args.loops.split(",")
    results = {name: [] for name in variants}
    with tempfile.NamedTemporaryFile() as file:
        block = os.urandom(1 << 20)
        for _ in range(args.mib):
            file.write(block)
        file.flush()
        for _ in range(args.rounds):
            for name in variants:
                loop_name, env = VARIANTS[name]
                results[name].append(run_sample(loop_name, env, file.name, size))
    print(f"sock_sendfile of {args.mib} MiB over a Unix socketpair, {args.rounds} rounds: median (min..max)")
    for name, samples in results.items():
        done = [s for s in samples if "wall_s" in s]
        if not done:
            print(f"{name:11s} not available: {samples[0]['unavailable']}")
            continue
        rate = [size / s["wall_s"] / 1e9 for s in done]
        cpu = [s["loop_cpu_s"] * 1e3 for s in done]
        print(f"{name:11s} {statistics.median(rate):5.2f} GB/s ({min(rate):.2f}..{max(rate):.2f}), "
              f"loop thread CPU {statistics.median(cpu):5.1f} ms ({min(cpu):.1f}..{max(cpu):.1f})")


if __name__ == "__main__":
    main()
