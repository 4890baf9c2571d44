"""The saturation benchmark: one loop under more load than one thread can
serve, and what each of the server's threads spends per request.

    python bench/saturation.py --client build/bench/echo_client [--rounds 5]
        [--modes proto,buffered,stream] [--sizes 1024,10240] [--clients 2]
        [--conns 32] [--duration 1.0] [--loops uvloop,pyloop-io0,pyloop-io1]
        [--cpus 0-1] [--json out.json]

--clients load-client processes (bench/echo_client.cpp) with --conns
connections each run at once against one server process
(bench/echo_server.py LOOP MODE), all free to run on --cpus. The loops'
idle spin is off (PYLOOP_SPIN_US=0): a spinning thread's CPU is not work.
Per sample, from /proc/PID/task/TID/schedstat over the clients' run:
CPU us per request of the whole process, of the loop thread (the main
thread) and of pyloop's I/O threads (named "pyloop-io"), and the ceiling
the loop thread implies, 1e6 / its us per request: the most requests/s
that loop could serve with every other thread on cores of their own. For
pyloop, the loop's wake-ups per request (loop._wake_stats(): epoll_waits,
those that returned nothing, eventfd writes that woke it) and the I/O
threads' own, read before and after the run through SIGUSR1.
Loops are interleaved within each round; a cell's ratio is the median of
the per-round ratios, with the rounds on the better side.
"""

import argparse
import json
import os
import pathlib
import select
import signal
import statistics
import subprocess
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import echo
import loops as loop_registry
import servers

WAKE_KEYS = ("waits", "empty_waits", "wakes", "io_waits", "io_empty_waits", "io_wakes")


def thread_cpu(pid):
    """{tid: (name, seconds on a CPU)} for every thread of pid."""
    threads = {}
    for task in pathlib.Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            ns = int((task / "schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            continue  # the thread ended meanwhile
        threads[int(task.name)] = (name, ns / 1e9)
    return threads


def wake_stats(server):
    """The server's loop._wake_stats() (servers.serve answers SIGUSR1), or None."""
    server.send_signal(signal.SIGUSR1)
    ready, _, _ = select.select([server.stdout], [], [], 5)
    line = server.stdout.readline().split(maxsplit=1) if ready else []
    return json.loads(line[1]) if len(line) == 2 and line[0] == "stats" and line[1].strip() != "null" else None


def split_cpu(pid, before, after):
    """(loop thread, I/O threads, all) CPU seconds between two thread_cpu readings."""
    loop = io = total = 0.0
    for tid, (name, seconds) in after.items():
        spent = seconds - before.get(tid, (name, 0.0))[1]
        total += spent
        if tid == pid:
            loop += spent
        elif name.startswith("pyloop-io"):
            io += spent
    return loop, io, total


def sample(args, loop, mode, size):
    command = [sys.executable, "-P", str(echo.HERE / "echo_server.py"), loop, mode]
    with servers.started(command, loop, args.cpus) as (server, port):
        if port is None:
            return server.why
        wakes0 = wake_stats(server)
        cpu0 = thread_cpu(server.pid)
        clients = [subprocess.Popen(echo.client_command(args.client, args.cpus, port, mode, size, args.conns,
                                                        args.duration),
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                   for _ in range(args.clients)]
        outputs = [client.communicate(timeout=args.duration + 30) for client in clients]
        loop_s, io_s, total_s = split_cpu(server.pid, cpu0, thread_cpu(server.pid))
        wakes1 = wake_stats(server)
    failed = [err.strip() for client, (_, err) in zip(clients, outputs) if client.returncode != 0]
    if failed:
        return f"client failed: {failed[0]}"
    results = [json.loads(out) for out, _ in outputs]
    requests = max(sum(r["all_requests"] for r in results), 1)
    per_request = 1e6 / requests
    result = {
        "rps": sum(r["rps"] for r in results),
        "lat_us": {"p99": max(r["lat_us"]["p99"] for r in results)},
        "server_cpu_us_per_request": total_s * per_request,
        "loop_cpu_us_per_request": loop_s * per_request,
        "io_cpu_us_per_request": io_s * per_request,
    }
    if wakes0 and wakes1:
        result["per_request"] = {k: (wakes1[k] - wakes0[k]) / requests for k in WAKE_KEYS}
        result["offloaded"] = wakes1["offloaded"]
        result["offload_switches"] = wakes1["offload_switches"] - wakes0["offload_switches"]
    return result


def summarize(runs):
    med = statistics.median
    row = {
        "rps": med(r["rps"] for r in runs),
        "cpu_us": med(r["server_cpu_us_per_request"] for r in runs),
        "loop_us": med(r["loop_cpu_us_per_request"] for r in runs),
        "io_us": med(r["io_cpu_us_per_request"] for r in runs),
    }
    row["ceiling"] = 1e6 / row["loop_us"] if row["loop_us"] else None
    if all("per_request" in r for r in runs):
        row["per_request"] = {k: med(r["per_request"][k] for r in runs) for k in WAKE_KEYS}
        row["offloaded"] = sum(r["offloaded"] for r in runs)
    return row


def round_ratios(runs_a, runs_b, key):
    """Per-round a/b of key: (median, rounds where a < b, rounds)."""
    ratios = [a[key] / b[key] for a, b in zip(runs_a, runs_b) if b[key]]
    if not ratios:
        return None
    return statistics.median(ratios), sum(r < 1.0 for r in ratios), len(ratios)


def table(samples, summary, base):
    lines = [f"{'cell':18} {'loop':17} {'req/s':>8} {'cpu us':>7} {'loop us':>7} {'io us':>6} {'ceiling':>8} "
             f"{'loop/base':>12} {'cpu/base':>12} {'waits':>6} {'empty':>6} {'wakes':>6} "
             f"{'io wait':>7} {'io empt':>7} {'io wake':>7} {'offl':>4}"]
    for cell, per in summary.items():
        for name, row in per.items():
            loop_ratio = cpu_ratio = ""
            if base in per and name != base:
                lr = round_ratios(samples[cell][name], samples[cell][base], "loop_cpu_us_per_request")
                cr = round_ratios(samples[cell][name], samples[cell][base], "server_cpu_us_per_request")
                loop_ratio = f"{lr[0]:.2f} {lr[1]}/{lr[2]}" if lr else ""
                cpu_ratio = f"{cr[0]:.2f} {cr[1]}/{cr[2]}" if cr else ""
            wakes = row.get("per_request")
            wake_cells = " ".join(f"{wakes[k]:>6.2f}" if k.startswith(("w", "e")) else f"{wakes[k]:>7.2f}"
                                  for k in WAKE_KEYS) if wakes else " " * 44
            ceiling = f"{row['ceiling']:8.0f}" if row["ceiling"] else "     n/a"
            lines.append(f"{cell:18} {name:17} {row['rps']:8.0f} {row['cpu_us']:7.2f} {row['loop_us']:7.2f} "
                         f"{row['io_us']:6.2f} {ceiling} {loop_ratio:>12} {cpu_ratio:>12} {wake_cells} "
                         f"{row.get('offloaded', ''):>4}")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--client", required=True)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--modes", default="proto,buffered,stream")
    ap.add_argument("--sizes", default="1024,10240")
    ap.add_argument("--clients", type=int, default=2)
    ap.add_argument("--conns", type=int, default=32, help="connections per client")
    ap.add_argument("--duration", type=float, default=1.0)
    ap.add_argument("--loops", default="uvloop,pyloop-io0,pyloop-io1")
    ap.add_argument("--base", default="pyloop-io0", help="the loop the ratios are taken against")
    ap.add_argument("--cpus", default=f"0-{(os.cpu_count() or 1) - 1}",
                    help="cores the server and clients may use (taskset list)")
    ap.add_argument("--json")
    args = ap.parse_args()
    os.environ["PYLOOP_SPIN_US"] = "0"  # the servers inherit it
    found, missing = loop_registry.available([n for n in args.loops.split(",")])
    cells = {f"{m}/{s}/{args.clients}x{args.conns}": (m, int(s))
             for m in args.modes.split(",") for s in args.sizes.split(",")}
    samples, unsupported = servers.interleave(list(found), args.rounds, cells,
                                              lambda name, mode, size: sample(args, name, mode, size))
    summary = {cell: {n: summarize(runs) for n, runs in per.items() if runs} for cell, per in samples.items()}
    print(table(samples, summary, args.base), file=sys.stderr)
    servers.save({"missing": servers.not_measured(missing, unsupported), "samples": samples, "summary": summary},
                 args.json)


if __name__ == "__main__":
    main()
