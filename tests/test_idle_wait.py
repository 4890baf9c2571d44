"""How the loop waits when it has nothing to run: pyloop polls for a short,
adaptive window before it parks (PYLOOP_SPIN_US; runtime/include/pyloop/rt/
spin_policy.hpp). Whatever it would have been woken from while parked must
still reach it while it polls: a signal, a call_soon_threadsafe, a timer's
deadline. Each scenario runs in a fresh process, on asyncio's loop and on
pyloop without a spin and with a long one (10 ms, so that the event lands
inside it)."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

SCENARIO = textwrap.dedent(
    """
    import asyncio, json, signal, sys, threading, time
    import pyloop

    loop = pyloop.new_event_loop() if sys.argv[1] == "pyloop" else asyncio.SelectorEventLoop()
    idle = threading.Event()
    main_thread = threading.get_ident()

    class Interrupted(Exception):
        pass

    def interrupt(signum, frame):
        raise Interrupted

    def from_another_thread(action):
        def run():
            idle.wait()
            time.sleep(0.001)  # the loop is idle by now, polling or parked
            action()
        threading.Thread(target=run, daemon=True).start()

    result = {}
    if sys.argv[2] == "signal":
        signal.signal(signal.SIGUSR1, interrupt)
        from_another_thread(lambda: signal.pthread_kill(main_thread, signal.SIGUSR1))
        loop.call_soon(idle.set)
        try:
            loop.run_forever()
        except Interrupted:
            result["interrupted"] = True
    elif sys.argv[2] == "threadsafe":
        from_another_thread(lambda: loop.call_soon_threadsafe(loop.stop))
        loop.call_soon(idle.set)
        loop.run_forever()
        result["stopped"] = True
    elif sys.argv[2] == "timers":
        # Deadlines shorter than the window: each timer runs once it is due, not before.
        lateness = []
        async def main():
            for _ in range(50):
                fired = loop.create_future()
                when = loop.time() + 0.003
                loop.call_at(when, lambda w=when: fired.set_result(loop.time() - w))
                lateness.append(await fired)
        loop.run_until_complete(main())
        result = {"count": len(lateness), "earliest": min(lateness), "resolution": loop._clock_resolution}
    loop.close()
    print(json.dumps(result))
    """
)

SETTINGS = [("asyncio", None), ("pyloop", "0"), ("pyloop", "10000")]


def run(loop, spin, what):
    env = dict(os.environ)
    if spin is not None:
        env["PYLOOP_SPIN_US"] = spin
    out = subprocess.run([sys.executable, "-P", "-c", SCENARIO, loop, what], env=env, capture_output=True,
                         text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1]), out.stderr


@pytest.mark.parametrize(("loop", "spin"), SETTINGS)
def test_a_signal_to_an_idle_loop_runs_its_handler(loop, spin):
    # A signal that comes while pyloop polls interrupts no system call; its
    # handler must still run before the loop parks.
    assert run(loop, spin, "signal")[0] == {"interrupted": True}


@pytest.mark.parametrize(("loop", "spin"), SETTINGS)
def test_call_soon_threadsafe_reaches_an_idle_loop(loop, spin):
    assert run(loop, spin, "threadsafe")[0] == {"stopped": True}


@pytest.mark.parametrize(("loop", "spin"), SETTINGS)
def test_timers_within_the_window_run_when_due(loop, spin):
    result = run(loop, spin, "timers")[0]
    assert result["count"] == 50
    # asyncio runs a timer due within the clock's resolution.
    assert result["earliest"] >= -result["resolution"]


@pytest.mark.parametrize("value", ["-1", "fast", "10001"])
def test_a_bad_spin_setting_is_reported_and_the_loop_works(value):
    result, stderr = run("pyloop", value, "threadsafe")
    assert result == {"stopped": True}
    assert f"PYLOOP_SPIN_US={value} is not a count of microseconds from 0 to 10000" in stderr
