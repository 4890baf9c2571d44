"""The echo benchmark: each loop's echo server (bench/echo_server.py) under the
native load client (bench/echo_client.cpp), per mode, message size and
concurrency, loops interleaved within each round.

    python bench/echo.py --client build/bench/echo_client [--rounds 3]
        [--modes raw,stream,proto,buffered,tls,udp] [--sizes 1024,10240,102400]
        [--concurrency 1,6,11] [--duration 1.0] [--loops ...] [--json out.json]

tls and udp run on a smaller grid, the requested sizes and concurrencies
that are also in GRIDS below (a datagram cannot hold 100 KiB anyway); the
native C++ servers ("native", and "native-uring" on io_uring) serve the TCP
modes only.

Each sample starts a fresh server process. On a machine with two or more
cores the server is pinned to CPU 1 and the client to CPU 0. Server CPU time
(user + system, all threads, from /proc) is read around the client's run and
divided by the requests it served.
"""

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys

HERE = pathlib.Path(__file__).parent
sys.path.insert(0, str(HERE))
import loops as loop_registry
import servers

TICKS = os.sysconf("SC_CLK_TCK")

# Modes measured on fewer cells than the TCP ones: mode -> (sizes, concurrencies).
GRIDS = {"tls": ((1024, 102400), (1, 11)), "udp": ((1024,), (1, 11))}
TRANSPORTS = {"tls": "tls", "udp": "udp"}  # the client's --transport per mode; tcp otherwise
NATIVE_MODES = ("raw", "stream", "proto", "buffered")


def cells(modes, sizes, concurrencies):
    """(mode, size, concurrency) to measure, each mode on its grid."""
    chosen = []
    for mode in modes:
        grid_sizes, grid_conc = GRIDS.get(mode, (sizes, concurrencies))
        chosen += [(mode, s, c) for s in sizes if s in grid_sizes for c in concurrencies if c in grid_conc]
    return chosen


def cpu_seconds(pid):
    fields = (pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1]).split()
    # utime and stime are fields 14 and 15 of /proc/PID/stat (1-based).
    return (int(fields[11]) + int(fields[12])) / TICKS


def client_command(client, core, port, mode, size, conns, duration):
    """The load client's command line, pinned to `core`."""
    return servers.pinned(core) + [client, "--port", str(port), "--conns", str(conns), "--size", str(size),
                                   "--duration", str(duration), "--warmup", "0.2",
                                   "--transport", TRANSPORTS.get(mode, "tcp")]


def sample(client, loop, mode, size, conns, duration, server_cpus="1"):
    """One run; a dict of results, or a string saying why there is none."""
    if loop in loop_registry.NATIVE_SERVERS:
        if mode not in NATIVE_MODES:
            return f"the native server has no {mode} mode"
        command = [str(loop_registry.NATIVE_SERVERS[loop])]
    else:
        command = [sys.executable, "-P", str(HERE / "echo_server.py"), loop, mode]
    with servers.started(command, loop, server_cpus) as (server, port):
        if port is None:
            return server.why
        cpu0 = cpu_seconds(server.pid)
        out = subprocess.run(client_command(client, 0, port, mode, size, conns, duration),
                             capture_output=True, text=True, timeout=duration + 30)
        cpu = cpu_seconds(server.pid) - cpu0
        if out.returncode != 0:
            return f"client failed: {out.stderr.strip()}"
        result = json.loads(out.stdout)
        result["server_cpu_us_per_request"] = cpu / max(result["all_requests"], 1) * 1e6
        return result


def summarize(samples):
    def med(key, sub=None):
        values = [s[key][sub] if sub else s[key] for s in samples]
        return statistics.median(values)

    rps = [s["rps"] for s in samples]
    return {
        "rps": med("rps"),
        "rps_min": min(rps),
        "rps_max": max(rps),
        "rps_cv": statistics.pstdev(rps) / statistics.fmean(rps) if len(rps) > 1 and any(rps) else 0.0,
        "mean_us": med("lat_us", "mean"),
        "p50_us": med("lat_us", "p50"),
        "p90_us": med("lat_us", "p90"),
        "p99_us": med("lat_us", "p99"),
        "cpu_us": med("server_cpu_us_per_request"),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--client", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--modes", default="raw,stream,proto,buffered,tls,udp")
    ap.add_argument("--sizes", default="1024,10240,102400")
    ap.add_argument("--concurrency", default="1,6,11")
    ap.add_argument("--duration", type=float, default=1.0)
    ap.add_argument("--loops", default=",".join(loop_registry.NAMES + ("native",)))
    ap.add_argument("--json")
    ap.add_argument("--server-cpus", default="1",
                    help="cores the server may use (taskset list); the client runs on core 0")
    args = ap.parse_args()
    found, missing = loop_registry.available(args.loops.split(","))
    names = list(found)
    measured = cells(args.modes.split(","), [int(s) for s in args.sizes.split(",")],
                     [int(c) for c in args.concurrency.split(",")])
    samples, unsupported = servers.interleave(
        names, args.rounds, {f"{m}/{s}/{c}": (m, s, c) for m, s, c in measured},
        lambda name, mode, size, conns: sample(args.client, name, mode, size, conns, args.duration,
                                               args.server_cpus))
    summary = {key: {n: summarize(v) for n, v in per.items() if v} for key, per in samples.items()}
    servers.save({
        "missing": servers.not_measured(missing, unsupported),
        "samples": samples,
        "summary": summary,
    }, args.json)


if __name__ == "__main__":
    main()
