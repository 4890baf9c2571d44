"""pyloop against each peer, judged round by round: for every loop-core
workload and echo cell of a tools/bench result folder, the median of the
per-round ratios (the loops run back to back within a round, so a round
compares them on the same state of a noisy machine), their range, and in how
many rounds pyloop was ahead. Ratios above 1 favour pyloop: peer time /
pyloop time for the loop core, pyloop req/s / peer req/s for echo.

    python -P bench/peers.py bench/results/<time> [--peers uvloop,rloop]

Prints one markdown table per interpreter found in the folder."""

import argparse
import json
import pathlib
import statistics


def round_ratios(ours, theirs, better):
    """Per-round ratios of pyloop's samples over a peer's, where both ran."""
    return [better(a, b) for a, b in zip(ours, theirs) if a is not None and b is not None]


def cell(ratios):
    if not ratios:
        return "n/a"
    ahead = sum(r > 1 for r in ratios)
    return f"{statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f}, {ahead}/{len(ratios)})"


def loop_core_rows(result, peers):
    for workload, per in result["samples"].items():
        ours = per.get("pyloop", [])
        yield f"loop core: {workload}", [
            cell(round_ratios(ours, per.get(peer, []), lambda a, b: b / a)) for peer in peers]


def echo_rows(result, peers):
    for key, per in result["samples"].items():
        ours = [s["rps"] for s in per.get("pyloop", [])]
        yield f"echo {key}", [
            cell(round_ratios(ours, [s["rps"] for s in per.get(peer, [])], lambda a, b: a / b))
            for peer in peers]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=pathlib.Path)
    parser.add_argument("--peers", default="uvloop,rloop")
    args = parser.parse_args()
    peers = args.peers.split(",")
    interpreters = sorted({path.stem.split("-", 1)[1] for path in args.folder.glob("*-*.json")})
    for interpreter in interpreters:
        rows, missing = [], {}
        for kind, make_rows in (("loop_core", loop_core_rows), ("echo", echo_rows)):
            path = args.folder / f"{kind}-{interpreter}.json"
            if path.exists():
                result = json.loads(path.read_text())
                rows += make_rows(result, peers)
                missing.update((name, why) for name, why in result.get("missing", {}).items() if name in peers)
        print(f"### {interpreter}: pyloop over each peer, median of per-round ratios (range, rounds ahead)\n")
        print("| cell | " + " | ".join(peers) + " |")
        print("|---|" + "---|" * len(peers))
        for name, cells in rows:
            print(f"| {name} | " + " | ".join(cells) + " |")
        for name, why in missing.items():
            print(f"\n{name}: {why}")
        print()


if __name__ == "__main__":
    main()
