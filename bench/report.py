"""Renders loop-core benchmark results (the JSON files loop_core.py writes) as
a text table: medians with spread per loop, pyloop's speed-up over uvloop and
asyncio, and the GIL-off/GIL-on ratio on the free-threaded interpreter.

    python bench/report.py LABEL=results.json [LABEL=results.json ...]
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
    gil = _gil_ratios(runs, loops, workloads)
    if gil:
        lines += ["", "Free-threaded 3.13t: time with the GIL on / time with it off (>1: GIL off is faster)"]
        lines += gil
    return "\n".join(lines)


def _gil_ratios(runs, loops, workloads):
    by_label = dict(runs)
    off = next((r for label, r in runs if "GIL off" in label or "GIL=0" in label), None)
    on = next((r for label, r in runs if "GIL on" in label or "GIL=1" in label), None)
    if not off or not on or off is on or not by_label:
        return []
    out = []
    for w in workloads:
        parts = []
        for n in loops:
            a, b = off["summary"].get(w, {}).get(n), on["summary"].get(w, {}).get(n)
            if a and b:
                parts.append(f"{n} {b['median'] / a['median']:.2f}")
        out.append(f"  {w}: " + ", ".join(parts))
    return out


def main(argv):
    runs = []
    for arg in argv:
        label, _, path = arg.partition("=")
        with open(path) as f:
            runs.append((label, json.load(f)))
    print(render(runs))


if __name__ == "__main__":
    main(sys.argv[1:])
