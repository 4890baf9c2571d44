"""The scaling benchmark: one server process running 1, 2, 4 ... loops, each
in its own thread with its own listening socket on one port
(bench/echo_server.py LOOP MODE THREADS), under several native load clients
at once (bench/echo_client.cpp). On free-threaded CPython with the GIL off
the loops run Python in parallel; with the GIL on they take turns.

    python bench/scaling.py --client build/bench/echo_client [--rounds 3]
        [--threads 1,2,4] [--loops asyncio,pyloop] [--mode proto]
        [--size 1024] [--conns 32] [--clients 2] [--server-cpus 1-15]
        [--client-cpus 0] [--duration 1.0] [--json out.json]

--conns connections in all, spread over --clients client processes, each
pinned to one core of --client-cpus in turn. Reports, per loop and thread
count, the median requests/s of all clients together, server CPU us per
request (all threads, from /proc) and the speed-up over one thread. Run it
under the interpreter to measure, with PYTHON_GIL=0 or 1 on 3.13t.
"""

import argparse
import json
import pathlib
import statistics
import subprocess
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import echo
import loops as loop_registry
import servers


def cpu_list(text):
    """The cores of a taskset-style list: "0,2-4" -> [0, 2, 3, 4]."""
    cores = []
    for part in text.split(","):
        first, _, last = part.partition("-")
        cores += range(int(first), int(last or first) + 1)
    return cores


def split(total, parts):
    """total spread over `parts` as evenly as whole numbers allow, none empty."""
    parts = min(parts, total)
    return [total // parts + (i < total % parts) for i in range(parts)]


def sample(args, loop, mode, size, threads):
    """One run of all clients against a fresh server; a dict, or why none."""
    command = [sys.executable, "-P", str(echo.HERE / "echo_server.py"), loop, mode, str(threads)]
    client_cores = cpu_list(args.client_cpus)
    with servers.started(command, loop, args.server_cpus) as (server, port):
        if port is None:
            return server.why
        cpu0 = echo.cpu_seconds(server.pid)
        clients = [
            subprocess.Popen(echo.client_command(args.client, client_cores[i % len(client_cores)], port, mode, size,
                                                 conns, args.duration),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for i, conns in enumerate(split(args.conns, args.clients))
        ]
        outputs = [client.communicate(timeout=args.duration + 30) for client in clients]
        cpu = echo.cpu_seconds(server.pid) - cpu0
    failed = [err.strip() for client, (_, err) in zip(clients, outputs) if client.returncode != 0]
    if failed:
        return f"client failed: {failed[0]}"
    results = [json.loads(out) for out, _ in outputs]
    requests = sum(r["all_requests"] for r in results)
    return {
        "rps": sum(r["rps"] for r in results),
        "lat_us": {"p99": max(r["lat_us"]["p99"] for r in results)},
        "server_cpu_us_per_request": cpu / max(requests, 1) * 1e6,
    }


def summarize(samples):
    """{cell: {loop: [results]}} -> {cell: {loop: medians}}, with each
    loop's speed-up over its one-thread cell of the same mode and size."""
    summary = {}
    for cell, per in samples.items():
        summary[cell] = {
            name: {
                "rps": statistics.median(s["rps"] for s in runs),
                "rps_min": min(s["rps"] for s in runs),
                "rps_max": max(s["rps"] for s in runs),
                "cpu_us": statistics.median(s["server_cpu_us_per_request"] for s in runs),
            }
            for name, runs in per.items() if runs
        }
    for cell, per in summary.items():
        one = summary.get(cell.rsplit("/", 1)[0] + "/1", {})
        for name, row in per.items():
            row["speedup"] = row["rps"] / one[name]["rps"] if name in one else None
    return summary


def table(summary):
    lines = [f"{'cell':20} {'loop':8} {'req/s':>9} {'min..max':>17} {'cpu us':>7} {'speed-up':>8}"]
    for cell, per in summary.items():
        for name, row in per.items():
            speedup = f"{row['speedup']:.2f}" if row["speedup"] is not None else "n/a"
            lines.append(f"{cell:20} {name:8} {row['rps']:9.0f} {row['rps_min']:8.0f}..{row['rps_max']:<8.0f} "
                         f"{row['cpu_us']:7.1f} {speedup:>8}")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--client", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", default="1,2,4")
    ap.add_argument("--loops", default="asyncio,pyloop")
    ap.add_argument("--mode", default="proto", choices=echo.NATIVE_MODES)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--conns", type=int, default=32)
    ap.add_argument("--clients", type=int, default=2)
    ap.add_argument("--server-cpus", default="1")
    ap.add_argument("--client-cpus", default="0")
    ap.add_argument("--duration", type=float, default=1.0)
    ap.add_argument("--json")
    args = ap.parse_args()
    found, missing = loop_registry.available(
        [n for n in args.loops.split(",") if n not in loop_registry.NATIVE_SERVERS])
    cells = {f"{args.mode}/{args.size}/{t}": (args.mode, args.size, int(t)) for t in args.threads.split(",")}
    samples, unsupported = servers.interleave(
        list(found), args.rounds, cells, lambda name, mode, size, threads: sample(args, name, mode, size, threads))
    summary = summarize(samples)
    print(table(summary), file=sys.stderr)
    servers.save({
        "args": vars(args),
        "missing": servers.not_measured(missing, unsupported),
        "samples": samples,
        "summary": summary,
    }, args.json)


if __name__ == "__main__":
    main()
