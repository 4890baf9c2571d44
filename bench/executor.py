"""The default executor: run_in_executor and asyncio.to_thread.

    python bench/executor.py --rounds 5 [--json out.json]

Three setups, interleaved in every round (the order rotates), each sample in
a fresh interpreter process:
  asyncio      asyncio's loop with its default executor (a ThreadPoolExecutor)
  pyloop+tpe   pyloop's loop with asyncio's ThreadPoolExecutor set as default
  pyloop       pyloop's loop with its own default executor (the work pool)
Workloads:
  tiny         100,000 `await loop.run_in_executor(None, f)` of a function that
               returns at once, in waves of 1,000 gathered: calls per second.
  cpu-K        K `asyncio.to_thread(busy)` at once, busy being pure-Python
               arithmetic of about 0.2 s: the speed-up over one call in the same
               process, K * t(1) / t(K), each time the best of 3, for K = 2, 4 ...
               up to the cores.
The report gives, per workload, each setup's median and range, and pyloop's
ratio over each other setup as the median of the per-round ratios with the
number of rounds it was ahead.
"""

import argparse
import asyncio
import concurrent.futures
import json
import os
import statistics
import subprocess
import sys
import time

CALLS, WAVE = 100_000, 1_000
BUSY_STEPS = 3_000_000
SETUPS = ["asyncio", "pyloop+tpe", "pyloop"]


def tiny():
    return 1


def busy(steps=BUSY_STEPS):
    total = 0
    for i in range(steps):
        total += i % 7
    return total


def new_loop(setup):
    if setup == "asyncio":
        return asyncio.SelectorEventLoop()
    import pyloop

    loop = pyloop.new_event_loop()
    if setup == "pyloop+tpe":
        loop.set_default_executor(concurrent.futures.ThreadPoolExecutor(thread_name_prefix="asyncio"))
    return loop


async def tiny_calls(loop):
    await asyncio.gather(*(loop.run_in_executor(None, tiny) for _ in range(WAVE)))  # warm-up
    start = time.perf_counter()
    for _ in range(CALLS // WAVE):
        await asyncio.gather(*(loop.run_in_executor(None, tiny) for _ in range(WAVE)))
    return CALLS / (time.perf_counter() - start)  # calls per second


async def cpu_calls(loop, k):
    await asyncio.gather(*(asyncio.to_thread(busy, 1000) for _ in range(k)))  # the pool's threads exist
    expected = busy()

    async def best_of_3(n):
        times = []
        for _ in range(3):
            start = time.perf_counter()
            results = await asyncio.gather(*(asyncio.to_thread(busy) for _ in range(n)))
            times.append(time.perf_counter() - start)
            assert results == [expected] * n
        return min(times)

    one = await best_of_3(1)
    return k * one / await best_of_3(k)  # the speed-up


def sample(setup, workload):
    loop = new_loop(setup)
    try:
        if workload == "tiny":
            return loop.run_until_complete(tiny_calls(loop))
        return loop.run_until_complete(cpu_calls(loop, int(workload.split("-")[1])))
    finally:
        loop.close()


def run_sample(setup, workload):
    out = subprocess.run([sys.executable, "-P", __file__, "--sample", setup, workload], capture_output=True,
                         text=True, timeout=300)
    if out.returncode:
        raise RuntimeError(f"{setup} {workload}: {out.stderr[-2000:]}")
    return float(out.stdout)


def workloads():
    ks, k = [], 1
    while k <= (os.cpu_count() or 1):
        ks.append(k)
        k *= 2
    if ks[-1] != os.cpu_count():
        ks.append(os.cpu_count())
    return ["tiny"] + [f"cpu-{k}" for k in ks if k > 1]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json")
    parser.add_argument("--sample", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sample:
        print(sample(*args.sample))
        return
    samples = {w: {s: [] for s in SETUPS} for w in workloads()}
    for r in range(args.rounds):
        order = SETUPS[r % len(SETUPS):] + SETUPS[: r % len(SETUPS)]
        for workload in samples:
            for setup in order:
                samples[workload][setup].append(run_sample(setup, workload))
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
    report = {"python": sys.version.split()[0], "gil": getattr(sys, "_is_gil_enabled", lambda: True)(),
              "cores": os.cpu_count(), "rounds": args.rounds, "samples": samples}
    print_report(report)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)


def print_report(report):
    samples = report["samples"]
    print(f"Python {report['python']}, GIL {'on' if report['gil'] else 'off'}, {report['cores']} cores, "
          f"{report['rounds']} rounds")
    tiny = samples["tiny"]
    print("\ntiny calls per second: median (range)")
    for setup in SETUPS:
        v = tiny[setup]
        print(f"  {setup:11} {statistics.median(v):>10,.0f} ({min(v):,.0f}-{max(v):,.0f})")
    for other in ("asyncio", "pyloop+tpe"):
        ratios = [p / o for p, o in zip(tiny["pyloop"], tiny[other])]
        print(f"  pyloop over {other}: {statistics.median(ratios):.2f} "
              f"({min(ratios):.2f}-{max(ratios):.2f}, ahead in {sum(x > 1 for x in ratios)}/{len(ratios)})")
    print("\nto_thread(busy) x K: speed-up over one call, median of the rounds (range)")
    cpu = [w for w in samples if w.startswith("cpu-")]
    for setup in SETUPS:
        cells = []
        for w in cpu:
            ups = samples[w][setup]
            cells.append(f"K={w.split('-')[1]}: {statistics.median(ups):.2f} ({min(ups):.2f}-{max(ups):.2f})")
        print(f"  {setup:11} " + "; ".join(cells))


if __name__ == "__main__":
    main()
