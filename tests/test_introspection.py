"""CPython 3.14's task introspection on pyloop: asyncio.capture_call_graph(),
print_call_graph() and `python -m asyncio ps / pstree PID`, which reads a
running program's tasks from outside it. Each must show on pyloop what it
shows on asyncio's loop."""

import asyncio
import io
import re
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(sys.version_info < (3, 14), reason="task introspection is new in CPython 3.14")


def graph_shape(graph):
    """What a FutureCallGraph says, without addresses: the future's name, its
    awaited-by chain (recursively) and the functions on its call stack."""
    future = graph.future
    name = future.get_name() if isinstance(future, asyncio.Task) else type(future).__name__
    frames = [entry.frame.f_code.co_qualname for entry in graph.call_stack]
    return name, frames, sorted(graph_shape(g) for g in graph.awaited_by)


async def nested_graph():
    asyncio.current_task().set_name("main")  # task numbers run on across loops
    graphs = {}

    async def leaf():
        graphs["inside"] = asyncio.capture_call_graph()
        out = io.StringIO()
        asyncio.print_call_graph(file=out)
        graphs["printed"] = out.getvalue()
        await asyncio.sleep(0)

    async def middle():
        await leaf()

    async with asyncio.TaskGroup() as group:
        waiting = group.create_task(asyncio.sleep(10), name="sleeper")
        group.create_task(middle(), name="middle")
        await asyncio.sleep(0.01)
        graphs["sleeper"] = asyncio.capture_call_graph(waiting)
        waiting.cancel()
    return graphs


def test_capture_call_graph_has_the_shape_asyncio_gives(loop_factory):
    graphs = asyncio.run(nested_graph(), loop_factory=loop_factory)
    expected = asyncio.run(nested_graph(), loop_factory=asyncio.SelectorEventLoop)
    assert graph_shape(graphs["inside"]) == graph_shape(expected["inside"])
    assert graph_shape(graphs["sleeper"]) == graph_shape(expected["sleeper"])
    name, frames, awaited_by = graph_shape(graphs["inside"])
    assert name == "middle" and frames[:2] == ["nested_graph.<locals>.leaf", "nested_graph.<locals>.middle"]
    assert awaited_by and awaited_by[0][0] == "main"  # the TaskGroup's owner waits on it

    def without_addresses(text):
        return re.sub(r"0x[0-9a-f]+|line \d+", "", text)

    assert without_addresses(graphs["printed"]) == without_addresses(expected["printed"])


CHILD = textwrap.dedent("""
    import asyncio, sys
    import pyloop

    async def sleeper():
        await asyncio.sleep(100)

    async def main():
        async with asyncio.TaskGroup() as group:
            group.create_task(sleeper(), name="sleeper-one")
            group.create_task(sleeper(), name="sleeper-two")
            await asyncio.sleep(0)
            print("ready", flush=True)

    factory = pyloop.new_event_loop if sys.argv[1] == "pyloop" else asyncio.SelectorEventLoop
    asyncio.run(main(), loop_factory=factory)
""")


def inspect_child(kind, command):
    child = subprocess.Popen([sys.executable, "-P", "-c", CHILD, kind], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline() == "ready\n"
        out = subprocess.run([sys.executable, "-m", "asyncio", command, str(child.pid)], capture_output=True,
                             text=True, timeout=60)
    finally:
        child.kill()
        child.wait()
        child.stdout.close()
    if out.returncode != 0 and "Permission" in out.stderr:
        pytest.skip(f"this machine does not let one process read another's memory: {out.stderr.strip()}")
    assert out.returncode == 0, out.stderr
    # Addresses, thread and task ids differ from run to run.
    return re.sub(r"0x[0-9a-f]+|^\d+|:\d+$", "", out.stdout, flags=re.MULTILINE)


@pytest.mark.parametrize("command", ["ps", "pstree"])
def test_asyncio_ps_lists_a_pyloop_programs_tasks(command):
    on_pyloop = inspect_child("pyloop", command)
    assert "sleeper-one" in on_pyloop and "sleeper-two" in on_pyloop and "Task-1" in on_pyloop
    assert on_pyloop == inspect_child("asyncio", command)
