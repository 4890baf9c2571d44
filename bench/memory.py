"""Memory: the server's resident set with many idle connections open.

    python -P bench/memory.py [--loops asyncio,uvloop,pyloop,native]
                              [--conns 10000] [--rounds 1] [--json out.json]

Each loop runs bench/echo_server.py in proto mode (the native server runs as
it is); this process opens --conns connections to it, in batches, and sends
one byte on each and reads its echo, so every connection has its transport
and protocol on the server. The server's VmRSS is read from /proc before the
first connection and with all of them open; the difference over the count is
the cost of one idle connection.
"""

import argparse
import pathlib
import resource
import socket
import statistics
import sys

HERE = pathlib.Path(__file__).parent
sys.path.insert(0, str(HERE))
import loops as loop_registry
import servers

BATCH = 50  # below asyncio's default listen backlog of 100


def rss_kib(pid):
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def open_idle(port, count):
    conns = []
    try:
        for start in range(0, count, BATCH):
            batch = [socket.create_connection(("127.0.0.1", port), timeout=30)
                     for _ in range(min(BATCH, count - start))]
            conns += batch
            for conn in batch:
                conn.sendall(b"x")
            for conn in batch:
                if conn.recv(1) != b"x":
                    raise RuntimeError("no echo")
    except BaseException:
        for conn in conns:
            conn.close()
        raise
    return conns


def sample(loop, count):
    """{'before_kib', 'after_kib', 'bytes_per_conn'}, or a string saying why none."""
    if loop in loop_registry.NATIVE_SERVERS:
        command = [str(loop_registry.NATIVE_SERVERS[loop])]
    else:
        command = [sys.executable, "-P", str(HERE / "echo_server.py"), loop, "proto"]
    with servers.started(command, loop) as (server, port):
        if port is None:
            return server.why
        before = rss_kib(server.pid)
        conns = open_idle(port, count)
        try:
            after = rss_kib(server.pid)
        finally:
            for conn in conns:
                conn.close()
        return {"before_kib": before, "after_kib": after, "bytes_per_conn": (after - before) * 1024 / count}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--loops", default=",".join(loop_registry.NAMES + ("native",)))
    ap.add_argument("--conns", type=int, default=10000)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--json")
    args = ap.parse_args()
    # Both ends need a fd per connection; the server inherits this limit.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 2 * args.conns + 256) if hard != resource.RLIM_INFINITY else 2 * args.conns + 256
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if want < args.conns + 64:
        sys.exit(f"the fd limit ({hard}) is too low for {args.conns} connections")
    names = [n for n in args.loops.split(",") if n]
    found, missing = loop_registry.available(names)
    samples = {n: [] for n in found}
    for r in range(args.rounds):
        for name in names[r % len(names):] + names[: r % len(names)]:
            if name not in samples:
                continue
            result = sample(name, args.conns)
            if isinstance(result, str):
                missing[name] = result
                del samples[name]
                continue
            samples[name].append(result)
            print(f"  round {r + 1}/{args.rounds} {name:8} {result['after_kib'] / 1024:8.1f} MiB with "
                  f"{args.conns} connections, {result['bytes_per_conn']:7.0f} bytes each", file=sys.stderr, flush=True)
    summary = {n: {"after_kib": statistics.median(s["after_kib"] for s in v),
                   "bytes_per_conn": statistics.median(s["bytes_per_conn"] for s in v)}
               for n, v in samples.items() if v}
    servers.save({"conns": args.conns, "missing": missing, "samples": samples, "summary": summary}, args.json)


if __name__ == "__main__":
    main()
