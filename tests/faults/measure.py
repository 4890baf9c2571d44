"""What the scenarios measure about their own process."""

import asyncio
import ctypes
import os
import resource
import sys

_libc = ctypes.CDLL("libc.so.6")


def fd_count():
    return len(os.listdir("/proc/self/fd"))


def scheduled_timer_count(loop):
    """How many timers the loop still holds, cancelled or not."""
    import pyloop

    if isinstance(loop, pyloop.Loop):
        return len(loop._scheduled_handles())
    return len(loop._scheduled)


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def rss_bytes_trimmed():
    """RSS once the C allocator has given its free memory back: what is left
    is memory still in use, so growth here is a leak, not the allocator
    keeping freed pages for later."""
    _libc.malloc_trim(0)
    return rss_bytes()


def cpu_seconds():
    """User and system CPU of the whole process, every thread counted."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def raise_fd_limit(wanted):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


async def run_child(*args, timeout):
    """Runs `python -P -m faults.ARGS...` with this process's environment and
    returns what it printed last, as JSON; fails if it failed."""
    import json

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-P", "-m", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(f"{args} did not finish in {timeout} s")
    assert proc.returncode == 0, f"{args} failed:\n{err.decode()}"
    return json.loads(out.decode().strip().splitlines()[-1])
