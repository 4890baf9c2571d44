"""What got faster or slower between two benchmark runs, beyond the noise.

    python -P bench/compare.py OLD NEW      (or: tools/bench --compare OLD NEW)

OLD and NEW are result folders of tools/bench (bench/results/<timestamp>,
or docs/bench: a folder's data.json, else its per-workload files).
Every cell both runs measured (interpreter, workload, echo or HTTP cell or
memory, loop) is compared by its samples: a change counts only when the two
runs' ranges do not overlap (every new sample better than every old one, or
worse), so a difference inside either run's own spread is reported as
noise, and a cell with a single sample in either run is not judged.
"""

import json
import pathlib
import statistics
import sys


def _values(kind, samples):
    """(numbers to compare, higher_is_better) for one cell's samples of one loop."""
    if kind in ("echo", "http"):
        return [s["rps"] for s in samples], True
    if kind == "memory":
        return [s["bytes_per_conn"] for s in samples], False
    return list(samples), False  # loop_core: seconds


def _runs(folder):
    """{run name: result} of a result folder: its data.json, or the echo-,
    http-, memory- and loop_core-*.json files it was made from."""
    folder = pathlib.Path(folder)
    if (folder / "data.json").exists():
        return json.loads((folder / "data.json").read_text())["runs"]
    return {path.stem: json.loads(path.read_text()) for path in sorted(folder.glob("*-*.json"))}


def _cells(folder):
    """{(run, cell, loop): (samples, higher_is_better)} for a result folder."""
    cells = {}
    for run, data in _runs(folder).items():
        kind = run.split("-")[0]
        samples = data.get("samples", {})
        if kind == "memory":
            samples = {"idle": samples}  # memory has one cell: {loop: [samples]}
        for cell, per in samples.items():
            for loop, loop_samples in per.items():
                values, higher = _values(kind, loop_samples)
                if values:
                    cells[(run, cell, loop)] = (values, higher)
    return cells


def classify(old, new, higher_is_better):
    """'faster', 'slower', 'noise' or 'unjudged' (a run with a single sample
    has no spread to judge by, e.g. --quick), and the ratio of medians (>1: better)."""
    ratio = statistics.median(new) / statistics.median(old)
    if not higher_is_better:
        ratio = 1 / ratio
    if min(len(old), len(new)) < 2:
        return "unjudged", ratio
    better = min(new) > max(old) if higher_is_better else max(new) < min(old)
    worse = max(new) < min(old) if higher_is_better else min(new) > max(old)
    return ("faster" if better else "slower" if worse else "noise"), ratio


def compare(old_folder, new_folder):
    old, new = _cells(old_folder), _cells(new_folder)
    rows = []
    for key in sorted(old.keys() & new.keys()):
        (old_values, higher), (new_values, _) = old[key], new[key]
        verdict, ratio = classify(old_values, new_values, higher)
        rows.append((verdict, ratio, key))
    return rows


def render(rows):
    lines = []
    for verdict in ("faster", "slower"):
        chosen = [r for r in rows if r[0] == verdict]
        lines.append(f"{verdict} ({len(chosen)}):")
        for _, ratio, (file, cell, loop) in sorted(chosen, key=lambda r: -abs(r[1] - 1)):
            lines.append(f"  {file:22} {cell:18} {loop:10} {ratio:6.2f}x")
    noise = sum(1 for r in rows if r[0] == "noise")
    unjudged = sum(1 for r in rows if r[0] == "unjudged")
    lines.append(f"within the noise: {noise} of {len(rows)} cells")
    if unjudged:
        lines.append(f"not judged (a single sample in a run): {unjudged} cells")
    return "\n".join(lines)


def main(argv):
    if len(argv) != 2:
        sys.exit(__doc__)
    print(render(compare(*argv)))


if __name__ == "__main__":
    main(sys.argv[1:])
