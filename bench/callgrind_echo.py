"""User-space instructions per echo request, counted by valgrind's callgrind:
on a noisy VM this is repeatable where requests/s is not (it leaves out the
kernel's share: syscalls, wake-ups).

    python -P bench/callgrind_echo.py --client build/bench/echo_client \\
        [--loops uvloop,pyloop] [--modes proto] [--size 1024] [--conns 1]

Each server runs under callgrind twice, for a short and a long load; the
difference in instructions over the difference in requests cancels the
start-up cost.
"""

import argparse
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).parent
sys.path.insert(0, str(HERE))
import echo


def instructions(out_file):
    text = pathlib.Path(out_file).read_text(errors="replace")
    return int(re.search(r"^summary: (\d+)", text, re.MULTILINE).group(1))


def run(client, loop, mode, size, conns, duration, out_file):
    """Requests served by a server under callgrind in `duration` seconds of load."""
    server = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_file}",
         sys.executable, "-P", str(HERE / "echo_server.py"), loop, mode],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        line = server.stdout.readline().split()
        if not line or line[0] != "ready":
            raise RuntimeError(f"{loop} {mode}: server did not start ({' '.join(line)})")
        out = subprocess.run(
            [client, "--port", line[1], "--conns", str(conns), "--size", str(size),
             "--duration", str(duration), "--warmup", "0.5", "--transport", echo.TRANSPORTS.get(mode, "tcp")],
            capture_output=True, text=True, check=True, timeout=duration + 60,
        )
        return json.loads(out.stdout)["all_requests"]
    finally:
        server.send_signal(2)  # callgrind writes its counts on the way out
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        time.sleep(0.2)


def per_request(client, loop, mode, size, conns, short=2.0, long=6.0):
    with tempfile.TemporaryDirectory() as tmp:
        a, b = os.path.join(tmp, "a.out"), os.path.join(tmp, "b.out")
        ra = run(client, loop, mode, size, conns, short, a)
        rb = run(client, loop, mode, size, conns, long, b)
        return (instructions(b) - instructions(a)) / max(rb - ra, 1)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--client", required=True)
    ap.add_argument("--loops", default="uvloop,pyloop")
    ap.add_argument("--modes", default="proto")
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--conns", type=int, default=1)
    args = ap.parse_args()
    for mode in args.modes.split(","):
        for loop in args.loops.split(","):
            n = per_request(args.client, loop, mode, args.size, args.conns)
            print(f"{mode:9} {loop:8} {n:8.0f} instructions/request", flush=True)


if __name__ == "__main__":
    main()
