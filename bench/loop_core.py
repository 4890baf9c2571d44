"""Loop-core microbenchmarks: the per-callback paths of an event loop, with no
I/O. Each workload takes a loop and returns the seconds its measured part took.

    python bench/loop_core.py --rounds 7 [--loops asyncio,uvloop,pyloop] [--json out.json]

Loops are interleaved within each round (the order rotates every round), so
machine noise hits all of them alike; the report gives medians and spread.
Every sample runs in a fresh interpreter process (same heap state for every
loop, and a loop that hangs or crashes costs one sample, not the run); a
sample over --sample-timeout seconds drops that loop from that workload and
is reported.
"""

import argparse
import asyncio
import gc
import json
import pathlib
import random
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import loops as loop_registry

CALL_SOON_N = 1_000_000
TIMERS_N = 100_000
SWITCH_TASKS, SWITCH_STEPS = 100, 2_000
GATHER_N = 100_000
THREADSAFE_N = 100_000


def bench_call_soon(loop):
    """1M call_soon callbacks, scheduled in batches of 1000 from a callback."""
    remaining = CALL_SOON_N
    batch = 1000

    def noop():
        pass

    def feeder():
        nonlocal remaining
        call_soon = loop.call_soon
        for _ in range(batch):
            call_soon(noop)
        remaining -= batch
        if remaining > 0:
            call_soon(feeder)
        else:
            call_soon(loop.stop)

    loop.call_soon(feeder)
    t0 = time.perf_counter()
    loop.run_forever()
    return time.perf_counter() - t0


def bench_timers(loop):
    """100k call_later timers over 0-10 ms, every third one cancelled."""
    rng = random.Random(42)
    delays = [rng.random() * 0.01 for _ in range(TIMERS_N)]
    fired = 0

    def tick():
        nonlocal fired
        fired += 1

    t0 = time.perf_counter()
    call_later = loop.call_later
    handles = [call_later(d, tick) for d in delays]
    for h in handles[::3]:
        h.cancel()
    expected = TIMERS_N - len(handles[::3])
    loop.call_later(0.011, loop.stop)
    loop.run_forever()
    elapsed = time.perf_counter() - t0
    assert fired == expected, (fired, expected)
    # The 11 ms the last timer waits is the same for every loop; remove it.
    return elapsed - 0.011


def bench_sleep0(loop):
    """100 tasks, each switching 2000 times with await asyncio.sleep(0)."""

    async def worker():
        for _ in range(SWITCH_STEPS):
            await asyncio.sleep(0)

    async def main():
        await asyncio.gather(*(worker() for _ in range(SWITCH_TASKS)))

    t0 = time.perf_counter()
    loop.run_until_complete(main())
    return time.perf_counter() - t0


def bench_gather(loop):
    """create_task + gather of 100k trivial coroutines."""

    async def leaf(i):
        return i

    async def main():
        create_task = loop.create_task
        tasks = [create_task(leaf(i)) for i in range(GATHER_N)]
        return await asyncio.gather(*tasks)

    t0 = time.perf_counter()
    result = loop.run_until_complete(main())
    elapsed = time.perf_counter() - t0
    assert len(result) == GATHER_N
    return elapsed


def bench_threadsafe(loop):
    """100k call_soon_threadsafe from another thread, the loop consuming."""
    received = 0
    done = threading.Event()

    def cb():
        nonlocal received
        received += 1
        if received == THREADSAFE_N:
            loop.stop()

    def producer():
        css = loop.call_soon_threadsafe
        for _ in range(THREADSAFE_N):
            css(cb)
        done.set()

    thread = threading.Thread(target=producer)
    t0 = time.perf_counter()
    thread.start()
    loop.run_forever()
    elapsed = time.perf_counter() - t0
    thread.join()
    return elapsed


WORKLOADS = {
    "call_soon": bench_call_soon,
    "timers": bench_timers,
    "sleep0": bench_sleep0,
    "gather": bench_gather,
    "threadsafe": bench_threadsafe,
}


def run_one(factory, workload):
    loop = factory()
    try:
        gc.collect()
        return workload(loop)
    finally:
        loop.close()


def sample(name, workload, timeout):
    """One measurement in a fresh process: seconds, or None past the timeout."""
    cmd = [sys.executable, "-P", __file__, "--one", name, workload]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=True)
    except subprocess.TimeoutExpired:
        return None
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(f"{name} / {workload} failed:\n{exc.stderr}") from None
    return float(out.stdout.split()[-1])


def measure(names, workloads, rounds, timeout, progress=True):
    factories, missing = loop_registry.available(names)
    order = list(factories)
    samples = {w: {n: [] for n in order} for w in workloads}
    timed_out = {}
    for r in range(rounds):
        rotated = order[r % len(order):] + order[: r % len(order)]
        for w in workloads:
            for n in rotated:
                if (w, n) in timed_out:
                    continue
                seconds = sample(n, w, timeout)
                if seconds is None:
                    timed_out[(w, n)] = f"over {timeout:g} s per sample; dropped"
                    del samples[w][n]
                else:
                    samples[w][n].append(seconds)
        if progress:
            print(f"  round {r + 1}/{rounds} done", file=sys.stderr, flush=True)
    for (w, n), why in timed_out.items():
        missing[f"{n} on {w}"] = why
    return samples, missing


def summarize(values):
    med = statistics.median(values)
    cv = statistics.pstdev(values) / statistics.fmean(values) if len(values) > 1 else 0.0
    return {"median": med, "min": min(values), "max": max(values), "cv": cv}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--loops", default=",".join(loop_registry.NAMES))
    ap.add_argument("--workloads", default=",".join(WORKLOADS), help="comma-separated names")
    ap.add_argument("--json", help="write samples and summaries here")
    ap.add_argument("--sample-timeout", type=float, default=20.0)
    ap.add_argument("--one", nargs=2, metavar=("LOOP", "WORKLOAD"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        name, workload = args.one
        factories, missing = loop_registry.available([name])
        if missing:
            sys.exit(missing[name])
        run_one(factories[name], WORKLOADS[workload])  # warm-up in this process
        print(run_one(factories[name], WORKLOADS[workload]))
        return
    # The native echo servers are the echo benchmark's limit, not event loops.
    names = [n for n in args.loops.split(",") if n and n not in loop_registry.NATIVE_SERVERS]
    workloads = [w for w in args.workloads.split(",") if w]
    samples, missing = measure(names, workloads, args.rounds, args.sample_timeout)
    result = {
        "python": sys.version,
        "versions": loop_registry.versions(),
        "gil_enabled": getattr(sys, "_is_gil_enabled", lambda: True)(),
        "rounds": args.rounds,
        "missing": missing,
        "descriptions": {w: WORKLOADS[w].__doc__ for w in workloads},
        "samples": samples,
        "summary": {w: {n: summarize(v) for n, v in per.items()} for w, per in samples.items()},
    }
    text = json.dumps(result, indent=1)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text)
    else:
        print(text)


if __name__ == "__main__":
    main()
