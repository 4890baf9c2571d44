"""The HTTP benchmark: a keep-alive hello-world server on every loop, driven
by wrk (from Debian's packages), server and wrk pinned to separate cores.

    python -P bench/http_bench.py [--loops asyncio,uvloop,pyloop] [--modes proto,aiohttp]
                            [--conns 10,100] [--duration 2] [--rounds 3] [--json out.json]

Modes are bench/http_server.py's: proto (a small asyncio.Protocol server) and
aiohttp (aiohttp.web). Each sample starts a fresh server and warms it up
with WARMUP_REQUESTS keep-alive requests before wrk runs. Per sample: wrk's
requests/s and latency percentiles, and the server's CPU time per request
read from /proc around the run.
"""

import argparse
import http.client
import pathlib
import re
import shutil
import statistics
import subprocess
import sys

HERE = pathlib.Path(__file__).parent
sys.path.insert(0, str(HERE))
import loops as loop_registry
import servers
from echo import cpu_seconds

_UNITS = {"us": 1.0, "ms": 1e3, "s": 1e6}
WARMUP_REQUESTS = 500


def warm_up(port, requests=WARMUP_REQUESTS):
    """Runs the server's request path (imports, caches, allocator) before it is measured."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        for _ in range(requests):
            connection.request("GET", "/")
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"warm-up request got HTTP {response.status}")
    finally:
        connection.close()


def parse_wrk(text):
    """requests/s, total requests and latency percentiles (us) from wrk --latency output."""
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    total = int(re.search(r"(\d+) requests in", text).group(1))
    latency = {}
    for pct, value, unit in re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", text, re.MULTILINE):
        latency[f"p{pct}"] = float(value) * _UNITS[unit]
    return {"rps": rps, "requests": total, "lat_us": latency}


def sample(loop, mode, conns, duration):
    """One run: a dict of results, or a string saying why there is none."""
    command = [sys.executable, "-P", str(HERE / "http_server.py"), loop, mode]
    with servers.started(command, loop, 1) as (server, port):
        if port is None:
            return server.why
        warm_up(port)
        cpu0 = cpu_seconds(server.pid)
        out = subprocess.run(
            servers.pinned(0) + ["wrk", "-t1", f"-c{conns}", f"-d{duration}s", "--latency",
                                 f"http://127.0.0.1:{port}/"],
            capture_output=True, text=True, timeout=duration + 30,
        )
        cpu = cpu_seconds(server.pid) - cpu0
        if out.returncode != 0 or "Requests/sec" not in out.stdout:
            return f"wrk failed: {out.stderr.strip() or out.stdout.strip()}"
        result = parse_wrk(out.stdout)
        result["server_cpu_us_per_request"] = cpu / max(result["requests"], 1) * 1e6
        return result


def summarize(samples):
    rps = [s["rps"] for s in samples]
    return {
        "rps": statistics.median(rps),
        "rps_min": min(rps),
        "rps_max": max(rps),
        "rps_cv": statistics.pstdev(rps) / statistics.fmean(rps) if len(rps) > 1 and any(rps) else 0.0,
        "p99_us": statistics.median(s["lat_us"].get("p99", 0.0) for s in samples),
        "cpu_us": statistics.median(s["server_cpu_us_per_request"] for s in samples),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--loops", default=",".join(loop_registry.NAMES))
    ap.add_argument("--modes", default="proto,aiohttp")
    ap.add_argument("--conns", default="10,100")
    ap.add_argument("--duration", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (tools/bootstrap installs it)")
    names = [n for n in args.loops.split(",") if n and n not in loop_registry.NATIVE_SERVERS]
    found, missing = loop_registry.available(names)
    names = [n for n in names if n in found]
    cells = [(m, int(c)) for m in args.modes.split(",") for c in args.conns.split(",")]
    samples, unsupported = servers.interleave(
        names, args.rounds, {f"{m}/{c}": (m, c) for m, c in cells},
        lambda name, mode, conns: sample(name, mode, conns, args.duration))
    servers.save({
        "missing": servers.not_measured(missing, unsupported),
        "samples": samples,
        "summary": {key: {n: summarize(v) for n, v in per.items() if v} for key, per in samples.items()},
    }, args.json)


if __name__ == "__main__":
    main()
