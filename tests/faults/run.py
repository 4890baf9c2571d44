"""Runs one scenario on one loop and prints its figures as JSON:

    python -P -m faults.run SCENARIO KIND [ARGS...]

KIND is `asyncio` (asyncio's own selector loop) or `pyloop` (with as many I/O
threads as PYLOOP_IO_THREADS says; tests/test_faults.py sets it)."""

import asyncio
import importlib
import json
import sys


def new_loop(kind):
    if kind == "asyncio":
        return asyncio.SelectorEventLoop()
    import pyloop

    return pyloop.new_event_loop()


def main():
    scenario, kind, *args = sys.argv[1:]
    module = importlib.import_module(f"faults.{scenario}")
    loop = new_loop(kind)
    try:
        figures = loop.run_until_complete(module.main(loop, kind, *args))
    finally:
        loop.close()
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
