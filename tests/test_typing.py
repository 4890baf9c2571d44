"""pyloop's public API is typed (py.typed, annotations, pyloop/_native.pyi):
mypy in strict mode accepts a user's file that uses it as README shows, and
reports the mistakes the types are there to catch."""

import pathlib
import subprocess
import sys
import textwrap

import pytest

import pyloop

pytest.importorskip("mypy")
pytestmark = pytest.mark.timeout(300)
if pathlib.Path(pyloop.__file__).parent.parent == pathlib.Path(__file__).resolve().parent.parent:
    pytest.skip("pyloop is installed editable here, which mypy can't follow", allow_module_level=True)

USER_FILE = """
import asyncio

import pyloop


async def main() -> int:
    await asyncio.sleep(0)
    return 1


answer: int = pyloop.run(main())
debugged: int = pyloop.run(main(), debug=True)
asyncio.run(main(), loop_factory=pyloop.new_event_loop)
with asyncio.Runner(loop_factory=pyloop.new_event_loop) as runner:
    runner.run(main())

loop: pyloop.Loop = pyloop.new_event_loop()
try:
    value: int = loop.run_until_complete(main())
    loop.call_soon(print, "soon").cancel()
    when: float = loop.call_later(1.0, print).when()
    now: float = loop.time()
    task: asyncio.Task[int] = loop.create_task(main())
    loop.run_until_complete(task)
finally:
    loop.close()
config: dict[str, object] = pyloop.build_config()
"""

MISTAKES = """
import pyloop


async def main() -> int:
    return 1


text: str = pyloop.run(main())
pyloop.run(main)
pyloop.new_event_loop().call_later("soon", print)
"""


def mypy(tmp_path, source):
    (tmp_path / "user.py").write_text(textwrap.dedent(source))
    # From tmp_path, so that the installed pyloop is checked, not the sources.
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--python-executable",
         sys.executable, "user.py"],
        cwd=tmp_path, capture_output=True, text=True,
    )


def test_strict_mypy_accepts_a_users_file(tmp_path):
    result = mypy(tmp_path, USER_FILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_strict_mypy_reports_misuse(tmp_path):
    result = mypy(tmp_path, MISTAKES)
    assert result.returncode == 1, result.stdout + result.stderr
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    assert [line.split(":")[1] for line in errors] == ["9", "10", "11"], result.stdout
    assert 'Incompatible types in assignment (expression has type "int", variable has type "str")' in errors[0]
    assert '"run" has incompatible type' in errors[1]
    assert '"call_later" of "BaseEventLoop" has incompatible type "str"' in errors[2]
