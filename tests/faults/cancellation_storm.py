"""A cancellation storm on both loops: thousands of tasks waiting in
sock_recv, a stream's read, sleep and wait_for, with random timeouts and
random cancellations, while a heartbeat keeps time. Every task ends as
asyncio says it must (its result, CancelledError or TimeoutError), the
heartbeat is never late by more than a bound, and no task, timer or fd is
left afterwards."""

import asyncio
import random
import socket

from faults.measure import fd_count, scheduled_timer_count

SOCKETS = 200  # one task in sock_recv on each
STREAMS = 100  # one task in a stream's read on each
TIMED = 1700  # half in sleep, half in wait_for
TASKS = SOCKETS + STREAMS + TIMED
# Generous: the bound is for a loop that stalls, not for a busy machine.
HEARTBEAT_PERIOD = 0.01
HEARTBEAT_LATE_AT_MOST = 1.0


async def storm(loop, seed):
    rng = random.Random(seed)
    accepted = []  # the server's ends, kept open and silent
    server = await asyncio.start_server(lambda r, w: accepted.append(w), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    pairs = [socket.socketpair() for _ in range(SOCKETS)]
    for a, b in pairs:
        a.setblocking(False)
        b.setblocking(False)
    streams = [await asyncio.open_connection("127.0.0.1", port) for _ in range(STREAMS)]

    worst_lateness = 0.0
    beating = True

    async def heartbeat():
        nonlocal worst_lateness
        while beating:
            due = loop.time() + HEARTBEAT_PERIOD
            await asyncio.sleep(HEARTBEAT_PERIOD)
            worst_lateness = max(worst_lateness, loop.time() - due)

    def waiter(i):
        if i < SOCKETS:
            return loop.sock_recv(pairs[i][0], 1)
        if i < SOCKETS + STREAMS:
            return streams[i - SOCKETS][0].read(1)
        if i % 2:
            return asyncio.sleep(rng.uniform(0, 0.2), result="slept")
        return asyncio.wait_for(asyncio.sleep(1, result="late"), rng.uniform(0, 0.1))

    beat = asyncio.ensure_future(heartbeat())
    tasks = [asyncio.ensure_future(waiter(i)) for i in range(TASKS)]
    for _ in range(20):  # cancel at random, in waves, while timeouts fire
        await asyncio.sleep(rng.uniform(0, 0.01))
        for task in rng.sample(tasks, TASKS // 20):
            task.cancel()
    await asyncio.sleep(0.25)  # every sleep and timeout is due by now
    for task in tasks:  # what still waits on a socket, cancel
        task.cancel()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    beating = False
    await beat

    for writer in [w for _, w in streams] + accepted:
        writer.close()
        await writer.wait_closed()
    server.close()
    await server.wait_closed()
    for a, b in pairs:
        a.close()
        b.close()
    return outcomes, worst_lateness


async def main(loop, kind):
    before = fd_count()
    outcomes, worst_lateness = await storm(loop, seed=7)
    kinds = {type(o).__name__ if isinstance(o, BaseException) else o for o in outcomes}
    # Sockets and streams never got data: those end cancelled. Sleeps end
    # with their result or cancelled; wait_for with TimeoutError or cancelled.
    assert kinds <= {"slept", "CancelledError", "TimeoutError"}, kinds
    for i, o in enumerate(outcomes):
        if i < SOCKETS + STREAMS:  # no data ever came
            assert isinstance(o, asyncio.CancelledError)
        elif i % 2 == 0:  # wait_for
            assert isinstance(o, (asyncio.CancelledError, TimeoutError))
    assert sum(o == "slept" for o in outcomes) > 0
    assert sum(isinstance(o, TimeoutError) for o in outcomes) > 0
    assert worst_lateness < HEARTBEAT_LATE_AT_MOST, worst_lateness
    assert asyncio.all_tasks(loop) == {asyncio.current_task()}
    await asyncio.sleep(0)
    assert scheduled_timer_count(loop) == 0
    after = fd_count()
    assert after == before, (before, after)
    counts = {kind: sum(type(o).__name__ == kind if isinstance(o, BaseException) else o == kind for o in outcomes)
              for kind in sorted(kinds)}
    return {"tasks": TASKS, "outcomes": counts, "heartbeat_worst_late_ms": round(worst_lateness * 1000, 1),
            "fds_before": before, "fds_after": after}
