"""What got faster or slower between two benchmark runs, beyond the noise.

    python -P bench/compare.py OLD NEW      (or: tools/bench --compare OLD NEW)

OLD and NEW are result folders of tools/bench (bench/results/<timestamp>).
Every cell both runs measured (interpreter, workload or echo cell, loop) is
compared by its samples: a change counts only when the two runs' ranges do
not overlap (every new sample better than every old one, or worse), so a
difference inside either run's own spread is reported as noise.
"""

import json
import pathlib
import statistics
import sys


def _cells(folder):
    """{(file, cell, loop): (samples, higher_is_better)} for a result folder."""
    cells = {}
    for path in sorted(pathlib.Path(folder).glob("*.json")):
        data = json.loads(path.read_text())
        echo = path.name.startswith("echo-")
        for cell, per in data.get("samples", {}).items():
            for loop, samples in per.items():
                values = [s["rps"] for s in samples] if echo else list(samples)
                if values:
                    cells[(path.stem, cell, loop)] = (values, echo)
    return cells


def classify(old, new, higher_is_better):
    """'faster', 'slower' or 'noise', and the ratio of medians (>1: better)."""
    ratio = statistics.median(new) / statistics.median(old)
    if not higher_is_better:
        ratio = 1 / ratio
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
    lines.append(f"within the noise: {noise} of {len(rows)} cells")
    return "\n".join(lines)


def main(argv):
    if len(argv) != 2:
        sys.exit(__doc__)
    print(render(compare(*argv)))


if __name__ == "__main__":
    main(sys.argv[1:])
