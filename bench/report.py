"""Renders benchmark results as text tables: loop-core results (the JSON
loop_core.py writes: medians with spread per loop, pyloop's speed-up over
uvloop, rloop and asyncio, the GIL-off/GIL-on ratio on the free-threaded
interpreter) and echo results (the JSON echo.py writes).

    python bench/report.py LABEL=loop_core.json [...] [--echo LABEL=echo.json ...]
"""

import json
import sys

NOISY_CV = 0.10  # a cell whose coefficient of variation exceeds this is flagged


def cell(summary):
    if summary is None:
        return "n/a"
    flag = " !" if summary["cv"] > NOISY_CV else ""
    return (f"{summary['median'] * 1e3:7.1f} ms ({summary['min'] * 1e3:.0f}-{summary['max'] * 1e3:.0f},"
            f" cv {summary['cv'] * 100:.0f}%){flag}")


def speedup(summaries, base, target="pyloop"):
    if base not in summaries or target not in summaries:
        return "n/a"
    return f"{summaries[base]['median'] / summaries[target]['median']:.2f}x"


def render(runs):
    """runs: list of (label, result dict). Returns the report as text."""
    loops = []
    for _, result in runs:
        for per in result["summary"].values():
            loops += [n for n in per if n not in loops]
    workloads = []
    for _, result in runs:
        workloads += [w for w in result["summary"] if w not in workloads]
    width = max(len(label) for label, _ in runs) + 2
    lines = ["Loop-core microbenchmarks: median time (min-max, coefficient of variation);",
             "'!' marks a cell with more than 10% variation. Speed-up = peer time / pyloop time.", ""]
    header = "".ljust(width) + "".join(n.ljust(34) for n in loops) + "pyloop vs uvloop  vs rloop   vs asyncio"
    descriptions = {}
    for _, result in runs:
        descriptions.update(result.get("descriptions", {}))
    for w in workloads:
        lines.append(f"== {w}: {descriptions.get(w, '')}")
        lines.append(header)
        for label, result in runs:
            per = result["summary"].get(w, {})
            row = label.ljust(width) + "".join(cell(per.get(n)).ljust(34) for n in loops)
            row += speedup(per, "uvloop").ljust(18) + speedup(per, "rloop").ljust(10) + speedup(per, "asyncio")
            lines.append(row)
        lines.append("")
    missing = {label: result["missing"] for label, result in runs if result["missing"]}
    for label, miss in missing.items():
        for name, why in miss.items():
            lines.append(f"{label}: {name} {why}")
    for build, ratios in _gil_ratios(runs, loops, workloads).items():
        lines += ["", f"Free-threaded {build}: time with the GIL on / time with it off (>1: GIL off is faster)"]
        lines += ratios
    return "\n".join(lines)


def _gil_ratios(runs, loops, workloads):
    """Per free-threaded build (the label before " GIL off"/" GIL on"), each
    loop's ratio of its time with the GIL on to its time with it off."""
    by_build = {}
    for label, result in runs:
        for state in ("off", "on"):
            if label.endswith(f" GIL {state}"):
                by_build.setdefault(label.removesuffix(f" GIL {state}"), {})[state] = result
    out = {}
    for build, pair in by_build.items():
        if "off" not in pair or "on" not in pair:
            continue
        lines = []
        for w in workloads:
            parts = []
            for n in loops:
                a, b = pair["off"]["summary"].get(w, {}).get(n), pair["on"]["summary"].get(w, {}).get(n)
                if a and b:
                    parts.append(f"{n} {b['median'] / a['median']:.2f}")
            lines.append(f"  {w}: " + ", ".join(parts))
        out[build] = lines
    return out


def rounds_ahead(result, key, peer="uvloop"):
    """"k/n": in how many of the n rounds pyloop served more requests/s than
    peer. The loops run back to back in each round, so a round compares
    them on the same state of a noisy machine, which a ratio of medians
    over all rounds does not."""
    per = result.get("samples", {}).get(key, {})
    ours, theirs = per.get("pyloop", []), per.get(peer, [])
    if not ours or len(ours) != len(theirs):
        return "n/a"  # a round without both samples leaves nothing to pair
    ahead = sum(1 for a, b in zip(ours, theirs) if a["rps"] > b["rps"])
    return f"{ahead}/{len(ours)}"


def render_echo(label, result):
    """One table per mode: median requests/s, p99 latency and server CPU per request."""
    loops = []
    for per in result["summary"].values():
        loops += [n for n in per if n not in loops]
    lines = [f"Echo benchmark, {label}: median req/s (p99 latency us, server CPU us/request);",
             "'!' marks more than 10% variation in req/s. Ratios = pyloop req/s / uvloop's and asyncio's;",
             "ahead = rounds in which pyloop's req/s beat uvloop's, of all rounds;",
             "limit = pyloop req/s / the native C++ echo server's (bench/echo_native_server.cpp).", ""]
    modes = []
    for key in result["summary"]:
        mode = key.split("/")[0]
        if mode not in modes:
            modes.append(mode)
    for mode in modes:
        lines.append(f"== {mode}")
        lines.append("size/conns".ljust(14) + "".join(n.ljust(30) for n in loops)
                     + "pyloop/uvloop  pyloop/asyncio  limit")
        for key, per in result["summary"].items():
            if not key.startswith(mode + "/"):
                continue
            _, size, conns = key.split("/")
            row = f"{int(size) // 1024}KiB/{conns}".ljust(14)
            for n in loops:
                c = per.get(n)
                text = "n/a" if not c else (f"{c['rps']:8.0f} ({c['p99_us']:.0f}, {c['cpu_us']:.1f})"
                                            + (" !" if c["rps_cv"] > NOISY_CV else ""))
                row += text.ljust(30)
            for peer in ("uvloop", "asyncio"):
                ratio = f"{per['pyloop']['rps'] / per[peer]['rps']:.2f}x" if "pyloop" in per and peer in per else "n/a"
                row += ratio.ljust(15)
                if peer == "uvloop":
                    row += rounds_ahead(result, key).ljust(7)
            row += f"{per['pyloop']['rps'] / per['native']['rps']:.0%}" if "pyloop" in per and "native" in per else "n/a"
            lines.append(row)
        lines.append("")
    for name, why in result["missing"].items():
        lines.append(f"{label}: {name}: {why}")
    return "\n".join(lines)


def render_memory(label, result):
    """Server RSS with many idle connections open, and the cost of one."""
    lines = [f"Memory, {label}: server RSS with {result['conns']} idle connections (median)",
             "loop".ljust(10) + "RSS MiB".rjust(10) + "bytes/connection".rjust(18) + "vs pyloop".rjust(11)]
    ours = result["summary"].get("pyloop")
    for name, s in result["summary"].items():
        ratio = f"{s['bytes_per_conn'] / ours['bytes_per_conn']:.2f}x" if ours and ours["bytes_per_conn"] > 0 else "n/a"
        lines.append(name.ljust(10) + f"{s['after_kib'] / 1024:10.1f}" + f"{s['bytes_per_conn']:18.0f}" + ratio.rjust(11))
    for name, why in result["missing"].items():
        lines.append(f"{label}: {name}: {why}")
    return "\n".join(lines)


def render_http(label, result):
    """One row per mode and connection count: median req/s (p99 us, server CPU us/request)."""
    loops = []
    for per in result["summary"].values():
        loops += [n for n in per if n not in loops]
    lines = [f"HTTP benchmark (wrk, keep-alive), {label}: median req/s (p99 latency us, server CPU us/request)",
             "mode/conns".ljust(14) + "".join(n.ljust(30) for n in loops) + "pyloop/uvloop"]
    for key, per in result["summary"].items():
        row = key.ljust(14)
        for n in loops:
            c = per.get(n)
            text = "n/a" if not c else (f"{c['rps']:8.0f} ({c['p99_us']:.0f}, {c['cpu_us']:.1f})"
                                        + (" !" if c["rps_cv"] > NOISY_CV else ""))
            row += text.ljust(30)
        row += f"{per['pyloop']['rps'] / per['uvloop']['rps']:.2f}x" if "pyloop" in per and "uvloop" in per else "n/a"
        lines.append(row)
    for name, why in result["missing"].items():
        lines.append(f"{label}: {name}: {why}")
    return "\n".join(lines)


def main(argv):
    runs, echo_runs, memory_runs, http_runs = [], [], [], []
    target = runs
    sections = {"--echo": echo_runs, "--memory": memory_runs, "--http": http_runs}
    for arg in argv:
        if arg in sections:
            target = sections[arg]
            continue
        label, _, path = arg.partition("=")
        with open(path) as f:
            target.append((label, json.load(f)))
    if runs:
        print(render(runs))
    for label, result in echo_runs:
        print()
        print(render_echo(label, result))
    for label, result in http_runs:
        print()
        print(render_http(label, result))
    for label, result in memory_runs:
        print()
        print(render_memory(label, result))


if __name__ == "__main__":
    main(sys.argv[1:])
