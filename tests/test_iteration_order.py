"""The order in which the loop runs queued callbacks, the callbacks of ready
fds and due timers. asyncio runs, per iteration, the callbacks queued before
its poll, then those of the fds the poll found, then the due timers; what
they schedule waits for the next iteration. pyloop polls at another point of
that sequence (pyloop/native/run_loop.cpp) and must run the same sequence.
The fds here are ready before the loop looks, so the order is deterministic."""

import socket

import pytest


@pytest.fixture
def ready_pair():
    """A connected pair whose first socket is readable (and writable)."""
    a, b = socket.socketpair()
    b.send(b"x")
    yield a
    a.close()
    b.close()


def run_chain(loop, trace):
    """c0 schedules c1 and a timer at delay 0; c1 schedules c2; c2 stops the loop."""

    def c0():
        trace.append("c0")
        loop.call_soon(c1)
        loop.call_later(0, trace.append, "t0")

    def c1():
        trace.append("c1")
        loop.call_soon(c2)

    def c2():
        trace.append("c2")
        loop.call_soon(loop.stop)

    loop.call_soon(c0)
    loop.run_forever()


def run_then_once_more(loop, callback):
    """Runs the loop from callback until something stops it, then for one
    more iteration."""
    loop.call_soon(callback)
    loop.run_forever()
    loop.call_soon(loop.stop)
    loop.run_forever()


def test_ready_fd_runs_after_the_callbacks_queued_before_the_poll(loop, ready_pair):
    trace = []
    loop.add_reader(ready_pair, trace.append, "read")
    run_chain(loop, trace)
    loop.remove_reader(ready_pair)
    assert trace == ["c0", "read", "c1", "read", "t0", "c2", "read", "read"]


def test_reader_added_by_a_callback_waits_for_what_it_scheduled(loop, ready_pair):
    trace = []

    def c0():
        trace.append("c0")
        loop.add_reader(ready_pair, trace.append, "read")
        loop.call_soon(trace.append, "c1")
        loop.call_soon(loop.stop)

    run_then_once_more(loop, c0)
    loop.remove_reader(ready_pair)
    assert trace == ["c0", "c1", "read", "read"]


def test_writer_added_by_a_callback_waits_for_what_it_scheduled(loop, ready_pair):
    trace = []

    def c0():
        loop.add_writer(ready_pair, trace.append, "write")
        loop.call_soon(trace.append, "c1")
        loop.call_soon(loop.stop)

    loop.call_soon(c0)
    loop.run_forever()
    loop.remove_writer(ready_pair)
    assert trace == ["c1", "write"]


@pytest.mark.parametrize("schedule", ["call_later_0", "call_at_past"])
def test_timer_scheduled_by_a_callback_runs_after_its_call_soon(loop, schedule):
    trace = []

    def c0():
        if schedule == "call_later_0":
            loop.call_later(0, trace.append, "timer")
        else:
            loop.call_at(loop.time() - 1, trace.append, "timer")
        loop.call_soon(trace.append, "soon")
        loop.call_soon(loop.stop)

    run_then_once_more(loop, c0)
    assert trace == ["soon", "timer"]


def test_timer_due_while_waiting_runs_after_the_fds(loop, ready_pair):
    trace = []

    def c0():
        loop.call_later(0.01, trace.append, "timer")
        loop.call_later(0.01, loop.stop)

    def on_read():
        trace.append("read")
        loop.remove_reader(ready_pair)

    loop.call_soon(c0)
    loop.call_soon(loop.add_reader, ready_pair, on_read)
    loop.run_forever()
    assert trace == ["read", "timer"]


def test_batch_cut_short_by_an_exception_resumes_first(loop, ready_pair):
    """KeyboardInterrupt from a reader leaves the fd's writer and what ran
    before it scheduled: the next run resumes with the writer."""
    trace = []
    raised = []

    def on_read():
        trace.append("read")
        if not raised:
            raised.append(True)
            raise KeyboardInterrupt

    def c0():
        trace.append("c0")
        loop.call_soon(trace.append, "c1")

    loop.add_reader(ready_pair, on_read)
    loop.add_writer(ready_pair, trace.append, "write")
    loop.call_soon(c0)
    with pytest.raises(KeyboardInterrupt):
        loop.run_forever()
    loop.call_soon(loop.stop)
    loop.run_forever()
    loop.remove_reader(ready_pair)
    loop.remove_writer(ready_pair)
    assert trace == ["c0", "read", "write", "c1", "read", "write"]
