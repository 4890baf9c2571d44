"""Turns a tools/bench result folder into data.json, report.md and plots.

    python -P bench/publish.py bench/results/<timestamp>

data.json holds every workload's raw samples and summaries as recorded
(loop_core-*.json, echo-*.json, http-*.json, memory-*.json), with the
machine they ran on. report.md is rendered from data.json alone, with the
same tables as the terminal summary and these plots (matplotlib; skipped,
and said so, when it is not installed):
- echo-<interp>.png: requests/s per loop for each echo mode and size
  (6 connections), and pyloop's share of the native C++ server;
- latency-<interp>.png: latency percentiles (p50, p90, p99) per loop at
  one connection;
- limit-<interp>.png: pyloop's requests/s as a share of the native server's;
- gil-3.13t.png, gil-3.14t.png: pyloop's loop-core times on that free-threaded
  build with the GIL off and on.
"""

import json
import os
import pathlib
import platform
import sys

HERE = pathlib.Path(__file__).parent
sys.path.insert(0, str(HERE))
import report

LABELS = {"3.13": "3.13", "3.13t-nogil": "3.13t GIL off", "3.13t-gil": "3.13t GIL on",
          "3.14": "3.14", "3.14t-nogil": "3.14t GIL off", "3.14t-gil": "3.14t GIL on"}


def machine():
    cpu = ""
    for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = pathlib.Path("/proc/meminfo").read_text().split()[1]
    return {"platform": platform.platform(), "cpu": cpu, "cores": os.cpu_count(),
            "memory_gib": round(int(mem) / 2**20, 1)}


def collect(folder):
    """data.json's content: {'machine': ..., 'runs': {'echo-3.13': {...}, ...}}."""
    runs = {}
    for path in sorted(pathlib.Path(folder).glob("*.json")):
        if path.name != "data.json":
            runs[path.stem] = json.loads(path.read_text())
    return {"machine": machine(), "runs": runs}


def _interp(run_name):
    return run_name.split("-", 1)[1]


def tables(data):
    """The report's text tables, per workload kind, in a stable order."""
    runs = data["runs"]
    loop_core = [(LABELS.get(_interp(k), k), v) for k, v in runs.items() if k.startswith("loop_core-")]
    parts = [report.render(loop_core)] if loop_core else []
    for kind, render in (("echo-", report.render_echo), ("http-", report.render_http),
                         ("memory-", report.render_memory)):
        parts += [render(LABELS.get(_interp(k), k), v) for k, v in runs.items() if k.startswith(kind)]
    return parts


def _grouped_bars(ax, keys, loops, value, colors):
    """Bars of value(key, loop) per key, in each loop's colour; returns the bar width."""
    width = 0.8 / max(len(loops), 1)
    for i, loop in enumerate(loops):
        ax.bar([j + i * width for j in range(len(keys))], [value(k, loop) for k in keys], width, label=loop,
               color=colors[loop])
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(keys))])
    return width


def _colors(summary):
    """One colour per loop for every plot of a run, so a loop looks the same throughout."""
    loops = sorted({n for per in summary.values() for n in per})
    return {loop: f"C{i}" for i, loop in enumerate(loops)}


def _echo_plot(plt, summary, title):
    """Requests/s per loop for each mode and size, at 6 connections where measured."""
    modes = list(dict.fromkeys(k.split("/")[0] for k in summary))
    colors = _colors(summary)
    fig, axes = plt.subplots(1, len(modes), figsize=(4 * len(modes), 3.5), squeeze=False)
    for ax, mode in zip(axes[0], modes):
        keys = [k for k in summary if k.startswith(mode + "/") and k.endswith("/6")] or \
               [k for k in summary if k.startswith(mode + "/") and k.endswith("/11")]
        loops = sorted({n for k in keys for n in summary[k]})
        _grouped_bars(ax, keys, loops, lambda k, loop: summary[k].get(loop, {}).get("rps", 0), colors)
        ax.set_xticklabels([f"{int(k.split('/')[1]) // 1024} KiB" for k in keys])
        ax.set_title(f"{mode}, {keys[0].split('/')[2] if keys else ''} connections")
        ax.set_ylabel("requests/s")
    fig.legend(handles=[plt.Rectangle((0, 0), 1, 1, color=c) for c in colors.values()], labels=list(colors),
               loc="upper right", fontsize=7)
    fig.suptitle(f"Echo, {title} (median requests/s)")
    return fig


def _latency_plot(plt, summary, title):
    """Latency percentiles at one connection: bar p50, dot p90, whisker to p99."""
    keys = [k for k in summary if k.endswith("/1")]
    loops = sorted({n for k in keys for n in summary[k]})
    fig, ax = plt.subplots(figsize=(max(6, len(keys)), 3.5))
    width = _grouped_bars(ax, keys, loops, lambda k, loop: summary[k].get(loop, {}).get("p50_us", 0),
                          _colors(summary))
    for i, loop in enumerate(loops):
        cells = [(j, summary[k][loop]) for j, k in enumerate(keys) if loop in summary[k]]
        xs = [j + i * width for j, _ in cells]
        p50 = [c.get("p50_us", 0) for _, c in cells]
        ax.errorbar(xs, p50, yerr=[[0] * len(cells), [c["p99_us"] - p for (_, c), p in zip(cells, p50)]],
                    fmt="none", ecolor="black", elinewidth=0.8, capsize=2)
        ax.plot(xs, [c.get("p90_us", 0) for _, c in cells], "k.", markersize=3)
    ax.set_xticklabels([k.rsplit("/", 1)[0].replace("/", " ") for k in keys], rotation=30, fontsize=7)
    ax.set_ylabel("latency (us)")
    ax.set_yscale("log")
    ax.set_title(f"Echo latency at one connection, {title}: p50 bars, p90 dots, p99 whiskers", fontsize=9)
    ax.legend(fontsize=7)
    return fig


def _limit_plot(plt, summary, title):
    """pyloop's requests/s as a share of the native server's, per cell (None without both)."""
    keys = [k for k in summary if "pyloop" in summary[k] and "native" in summary[k]]
    if not keys:
        return None
    fig, ax = plt.subplots(figsize=(max(6, len(keys) * 0.3), 3.5))
    ax.bar(range(len(keys)), [summary[k]["pyloop"]["rps"] / summary[k]["native"]["rps"] * 100 for k in keys])
    ax.axhline(100, color="grey", linewidth=0.8)
    ax.set_xticks(range(len(keys)))
    ax.set_xticklabels(keys, rotation=90, fontsize=6)
    ax.set_ylabel("% of the native server")
    ax.set_title(f"pyloop's share of the C++ limit, {title}")
    return fig


def _gil_plot(plt, off, on, build):
    """pyloop's loop-core times on a free-threaded build, GIL off vs on."""
    work = [w for w in off["summary"] if "pyloop" in off["summary"][w] and "pyloop" in on["summary"].get(w, {})]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    xs = range(len(work))
    ax.bar([x - 0.2 for x in xs], [off["summary"][w]["pyloop"]["median"] * 1e3 for w in work], 0.4, label="GIL off")
    ax.bar([x + 0.2 for x in xs], [on["summary"][w]["pyloop"]["median"] * 1e3 for w in work], 0.4, label="GIL on")
    ax.set_xticks(list(xs))
    ax.set_xticklabels(work)
    ax.set_ylabel("ms (lower is better)")
    ax.set_title(f"pyloop loop core on {build}, GIL off vs on")
    ax.legend()
    return fig


def plot(data, folder):
    """Writes the PNGs; returns their file names (none without matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    figures = {}
    for name, run in data["runs"].items():
        if name.startswith("echo-"):
            interp = _interp(name)
            title = LABELS.get(interp, interp)
            figures[f"echo-{interp}.png"] = _echo_plot(plt, run["summary"], title)
            figures[f"latency-{interp}.png"] = _latency_plot(plt, run["summary"], title)
            figures[f"limit-{interp}.png"] = _limit_plot(plt, run["summary"], title)
    for build in ("3.13t", "3.14t"):
        off, on = data["runs"].get(f"loop_core-{build}-nogil"), data["runs"].get(f"loop_core-{build}-gil")
        if off and on:
            figures[f"gil-{build}.png"] = _gil_plot(plt, off, on, build)
    written = []
    for file_name, fig in figures.items():
        if fig is None:
            continue
        fig.tight_layout()
        fig.savefig(pathlib.Path(folder) / file_name, dpi=90)
        plt.close(fig)
        written.append(file_name)
    return written


def render_markdown(data, images):
    m = data["machine"]
    lines = ["# pyloop benchmark report", "",
             f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, {m['platform']}.", ""]
    for name in images:
        lines += [f"![{name}]({name})", ""]
    if not images:
        lines += ["(No plots: matplotlib is not installed.)", ""]
    for table in tables(data):
        lines += ["```", table, "```", ""]
    return "\n".join(lines)


def publish(folder):
    data = collect(folder)
    pathlib.Path(folder, "data.json").write_text(json.dumps(data, indent=1))
    images = plot(data, folder)
    pathlib.Path(folder, "report.md").write_text(render_markdown(data, images))
    return data, images


def main(argv):
    if len(argv) != 1:
        sys.exit(__doc__)
    _, images = publish(argv[0])
    print(f"{argv[0]}: data.json, report.md" + (", " + ", ".join(images) if images else " (no plots)"))


if __name__ == "__main__":
    main(sys.argv[1:])
