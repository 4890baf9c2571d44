"""What the benchmark drivers and their servers share: starting a server
process and learning its port, serving on a loop by name, and the result
files' common fields.

A server prints "ready PORT" once listening, or "unsupported: WHY" and
exits 3 when the loop lacks what it needs.
"""

import contextlib
import json
import os
import pathlib
import queue
import signal
import subprocess
import sys
import threading

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import loops as loop_registry


def pinned(cpus):
    """taskset's prefix for running on `cpus` (a list like "1" or "0,1"), when there are two cores."""
    return ["taskset", "-c", str(cpus)] if (os.cpu_count() or 1) >= 2 else []


@contextlib.contextmanager
def started(command, loop, cpus=None):
    """Runs a server; yields (process, port), or (process, None) with the
    reason it gave in process.why. Kills it on the way out."""
    server = subprocess.Popen(
        (pinned(cpus) if cpus is not None else []) + command,
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env=dict(os.environ, **loop_registry.env_for(loop)),
    )
    try:
        line = server.stdout.readline().split()
        if not line or line[0] != "ready":
            server.wait(timeout=10)
            server.why = " ".join(line[1:]) or f"server exited with {server.returncode}"
            yield server, None
        else:
            yield server, int(line[1])
    finally:
        server.kill()
        server.wait()


def _factory(name):
    """The loop factory called `name`; exits 3, saying why, when there is none."""
    factories, missing = loop_registry.available([name])
    if missing:
        _unsupported(missing[name])
    return factories[name]


def _unsupported(why):
    print(f"unsupported: {why}", flush=True)
    sys.exit(3)


def serve(name, start):
    """Runs a server on the loop called `name`: start(loop) is a coroutine
    returning the port, or raising NotImplementedError(why)."""
    loop = _factory(name)()
    try:
        port = loop.run_until_complete(start(loop))
    except NotImplementedError as exc:
        _unsupported(exc or f"{name} has no such server")
    if hasattr(loop, "add_signal_handler"):
        # The saturation benchmark reads the loop's wake-ups around a run.
        stats = getattr(loop, "_wake_stats", lambda: None)
        loop.add_signal_handler(signal.SIGUSR1, lambda: print("stats", json.dumps(stats()), flush=True))
    print(f"ready {port}", flush=True)
    loop.run_forever()


def serve_in_threads(name, start, threads):
    """Like serve, with `threads` loops, each in its own thread:
    start(loop, port=..., reuse_port=True) on each, the first on an
    ephemeral port and the others on the port it got."""
    factory = _factory(name)
    started_on = queue.SimpleQueue()

    def run(port):
        loop = factory()
        try:
            port = loop.run_until_complete(start(loop, port=port, reuse_port=True))
        except Exception as exc:  # noqa: BLE001 - the main thread raises it again
            started_on.put(exc)
            return
        started_on.put(port)
        loop.run_forever()

    port = 0
    for _ in range(threads):
        threading.Thread(target=run, args=(port,), daemon=True).start()
        port = started_on.get()
        if isinstance(port, NotImplementedError):
            _unsupported(port or f"{name} has no such server")
        if isinstance(port, Exception):
            raise port
    print(f"ready {port}", flush=True)
    threading.Event().wait()  # the loops serve until the process is killed


def save(result, path):
    """Adds what every result records (interpreter, versions, GIL) and
    writes it to path, or prints it."""
    result = {
        "python": sys.version,
        "versions": loop_registry.versions(),
        "gil_enabled": getattr(sys, "_is_gil_enabled", lambda: True)(),
        **result,
    }
    text = json.dumps(result, indent=1)
    if path:
        pathlib.Path(path).write_text(text)
    else:
        print(text)


def not_measured(missing, unsupported):
    """What a result file records as not measured: the loops that are not
    available, and interleave's (loop, mode) pairs without a server."""
    return missing | {f"{n} {m}": why for (n, m), why in unsupported.items()}


def interleave(names, rounds, cells, measure):
    """Measures every cell on every loop, `rounds` times, the loops in a
    rotated order each round so that none always runs first.

    cells maps a key to (mode, *args); measure(name, mode, *args) returns a
    result dict with "rps" and "lat_us", or a string saying why the loop has
    no such server (then it is skipped in that mode from then on). Returns
    ({key: {name: [results]}}, {(name, mode): why}).
    """
    samples = {key: {n: [] for n in names} for key in cells}
    unsupported = {}
    for r in range(rounds):
        order = names[r % len(names):] + names[: r % len(names)]
        for key, (mode, *args) in cells.items():
            for name in order:
                if (name, mode) in unsupported:
                    continue
                result = measure(name, mode, *args)
                if isinstance(result, str):
                    unsupported[(name, mode)] = result
                    continue
                samples[key][name].append(result)
                print(f"  round {r + 1}/{rounds} {key:>16} {name:8} {result['rps']:10.0f} req/s "
                      f"p99 {result['lat_us'].get('p99', 0.0):8.1f} us", file=sys.stderr, flush=True)
    return samples, unsupported
