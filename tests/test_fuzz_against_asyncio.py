"""Random sequences of operations on a stream transport, the raw socket at
its other end and the loop, run once on asyncio's own loop and once on
pyloop (tests/fuzz_driver.py runs them): pyloop must do what asyncio does.

What is compared (`comparable`), and how it is normalised:
- the protocol's callbacks in order, with consecutive data_received calls
  merged into one (how a byte stream is cut into reads is up to the loop:
  pyloop reads 64 KiB at a time, asyncio 256 KiB) and connection_lost's
  exception reduced to its type;
- in which settled stretch of the run each callback came (the driver marks
  the end of each stretch), except after the last operation, where the
  peer reads everything and the scheduler decides the interleaving;
- what every operation returned or raised (type and message);
- the order of call_soon callbacks among the protocol's callbacks, and
  which callbacks ran at all. Timers are compared as the set that ran:
  their order among other callbacks depends on how long the test took
  between operations (their order among themselves is checked on each
  loop, by their when());
- what the loop logged at WARNING and above, what it handed its exception
  handler, and the ResourceWarnings it left behind;
- every byte each end received, and how the peer's reading ended; once the
  transport has thrown away what it had not sent (abort, a fatal error),
  what still reaches the peer is what the kernel had taken, and only its
  order is checked;
- pause_writing, resume_writing and get_write_buffer_size() where pyloop
  sends from the loop thread, as asyncio does. Where its I/O thread shares
  the socket (the suite's setting, conftest.py), it hands the kernel the
  same bytes in other pieces and at other moments, and the kernel's room
  depends on the pieces, so the buffer's size, and with it when the water
  marks are crossed, differ; there each loop is checked against asyncio's
  rules instead: pause only above the high-water mark, resume only at or
  below the low one, a write that leaves the buffer above the high-water
  mark has paused, and every byte written is in the buffer, in the kernel
  or read by the peer. Where that difference empties one loop's buffer
  and not the other's, the rest of the run depends on it, and only what
  came before is compared (`parting`): rare with I/O threads offloading
  when busy, common with PYLOOP_OFFLOAD=always, where write() hands
  everything to the I/O thread instead of sending it at once.
- what the I/O thread once did differently, each shown alone by a test at
  the end of this file: a reset while it sends reaches the protocol as
  asyncio's read reports it, and data waiting when reading resumes comes
  in the next iteration, offloaded too.

Each loop is also checked on its own (so asyncio confirms the checks):
callbacks in a protocol's order, no byte lost, duplicated or reordered.

PYLOOP_FUZZ_EXAMPLES sets the number of examples of every property (the
defaults run the file in under a minute on two cores); PYLOOP_FUZZ_RANDOM=1
draws new examples on each run instead of the same ones.
With -s each property prints how many examples it ran;
--hypothesis-show-statistics shows what they exercised.
"""

import asyncio
import hashlib
import os
import socket
import subprocess
import sys
import textwrap
import time

import pytest
from conftest import fd_count
from fuzz_driver import Driver
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import pyloop

LOOPS = {"asyncio": asyncio.SelectorEventLoop, "pyloop": pyloop.new_event_loop}
EXAMPLES = os.environ.get("PYLOOP_FUZZ_EXAMPLES")

# An example takes well under a second; a settle that never ends gives up
# after seconds (tests/fuzz_driver.py), so a hang can't pass this.
pytestmark = pytest.mark.timeout(600 + 2 * int(EXAMPLES or 0))


def fuzz_settings(default_examples):
    return settings(
        max_examples=int(EXAMPLES or default_examples),
        deadline=None,
        derandomize=os.environ.get("PYLOOP_FUZZ_RANDOM") != "1",
        database=None,  # nothing written into the working tree
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        print_blob=True,
    )


# --- strategies -------------------------------------------------------------

# Small, a few socket buffers, and large enough to stay buffered.
NONEMPTY_SIZES = st.one_of(
    st.integers(1, 64), st.integers(1000, 20_000), st.integers(100_000, 300_000)
)
SIZES = st.one_of(st.just(0), NONEMPTY_SIZES)
FORMS = st.sampled_from(["bytes", "bytearray", "memoryview"])
# Water marks, invalid ones included (negative, low above high).
LIMITS = st.one_of(
    st.none(), st.integers(-2, 2), st.integers(0, 20_000), st.integers(50_000, 400_000)
)
# What the driver does after each operation: mostly settle, sometimes run
# one iteration or nothing, so that operations also meet mid-flight.
THEN = st.sampled_from(["settle", "settle", "settle", "step", "none"])
NOW = st.just("none")


def op(name, *args, then=THEN):
    """An operation: its name, its arguments' strategies, what follows it."""
    return st.tuples(st.just(name), *args, then)


def calls(*methods, then=THEN):
    """A call of one of the transport's methods that take no argument."""
    return op("query", st.sampled_from(methods), then=then)


WRITE = op("write", SIZES, FORMS)
LARGE_WRITE = op("write", NONEMPTY_SIZES, FORMS)
WRITE_BAD = op("write_bad", st.sampled_from(["text", 7, None, [b"a"]]))  # not bytes-like
# No empty chunk: asyncio leaves one at the end of its buffer forever, so
# the transport never finishes closing (CPython gh-155888), on both loops.
WRITELINES = op("writelines", st.lists(NONEMPTY_SIZES, max_size=4).map(tuple))
SET_LIMITS = op("set_write_buffer_limits", LIMITS, LIMITS)
PAUSE_RESUME = calls("pause_reading", "resume_reading")
QUERIES = ("is_reading", "is_closing", "get_write_buffer_size", "get_write_buffer_limits",
           "can_write_eof")
QUERY = calls(*QUERIES)
ENDINGS = ("write_eof", "close", "abort")
ENDING = calls(*ENDINGS)
PEER_SEND = op("peer_send", st.integers(0, 4000))
PEER_RECV = op("peer_recv", st.sampled_from([1, 100, 4096, 65536, 1 << 20]))
PEER_SHUTDOWN = op("peer_shutdown")
PEER_CLOSE = op("peer_close", st.booleans())  # True: with a reset
CALL_SOON = op("call_soon")
CALL_LATER = op("call_later", st.sampled_from([0, 0.001, 0.005, 0.02]))
CANCEL = op("cancel", st.integers(0, 20))  # a handle made so far, by index
STEP = op("step", then=NOW)

SETUPS = st.tuples(
    st.sampled_from(["unix", "tcp"]),
    st.sampled_from(["create_connection", "connect_accepted_socket"]),
    # A Protocol, or a BufferedProtocol with a buffer of that size.
    st.one_of(st.just("plain"), st.sampled_from([1, 7, 4096, 65536, 300_000])),
    st.sampled_from([None, False, True]),  # what eof_received returns
    st.integers(0, 2**32),
)


def ops_of(*choices, max_size=30):
    """Lists of operations; an operation listed twice comes twice as often."""
    return st.lists(st.one_of(choices), min_size=2, max_size=max_size)


# --- comparing ----------------------------------------------------------------

FLOW = ("pause_writing", "resume_writing")


def digest(data):
    return len(data), hashlib.sha256(data).hexdigest()[:12]


def segmented(log):
    """The log's entries, each tagged with the settle mark that ends its
    stretch ("end" for what came after the last mark), with data_received
    calls merged and the marks themselves left out."""
    out, tag = [], "end"
    for entry in reversed(log):
        if entry[0] == "settled":
            tag = entry[1]
            continue
        if entry[0] == "data" and out and out[-1][1][0] == "data" and out[-1][0] == tag:
            out[-1] = (tag, ("data", entry[1] + out[-1][1][1]))
            continue
        out.append((tag, entry))
    out.reverse()
    return [(tag, ("data", *digest(e[1])) if e[0] == "data" else e) for tag, e in out]


def parting(mine, theirs):
    """How many operations had been applied where one loop's write buffer
    was empty and the other's was not, or None. With pyloop's I/O thread
    the kernel takes a different number of bytes (see the module's
    docstring), and at the margin that empties one buffer only: from there
    on, when close() ends in connection_lost, when write_eof() reaches the
    peer, and whether a write after close() is still sent or dropped,
    depend on it."""
    for (applied, empty), (_, other) in zip(mine.emptiness, theirs.emptiness):
        if empty != other:
            return applied
    return None


def comparable(d, exact_flow, parted=None):
    """The record of a run, as compared; with exact_flow, also what depends
    on how many bytes the kernel took; up to `parted` operations only, when
    the loops' paths parted there (parting)."""
    entries = segmented(d.log)
    results = [(i, name, value) for i, name, value in d.results]
    if d.discarded_at is not None:
        # What the peer reads now is what the kernel had taken.
        results[d.discarded_at:] = [(i, name, "after a discard" if name == "peer_recv" else value)
                                    for i, name, value in results[d.discarded_at:]]
    if not exact_flow:
        results = [(i, name, "up to the kernel" if name == "get_write_buffer_size" else value)
                   for i, name, value in results]
    callbacks = [(tag, e) for tag, e in entries if e[0] != "timer" and e[0] not in FLOW]
    record = {
        "callbacks": callbacks,
        "timers that ran": sorted(e[1] for e in d.log if e[0] == "timer"),
        "results": [(name, value) for i, name, value in results],
        "logged": d.warnings,
        "protocol received": digest(d.bytes_in),
        "peer received": digest(d.peer_got) if d.discarded_at is None else "after a discard",
        "peer's reading ended": d.peer_end,
        "still busy": d.unsettled,
    }
    if exact_flow:
        record["flow control"] = [(tag, e) for tag, e in entries if e[0] in FLOW]
    if parted is not None:
        record["callbacks"] = [(tag, e) for tag, e in callbacks if tag != "end" and tag < parted]
        record["results"] = [(name, value) for i, name, value in results if i < parted]
        for key in ("logged", "peer received", "peer's reading ended"):
            del record[key]
    return record


CHECKS_ONLY = ("settled", "soon", "timer", "still busy", "peer still reading")


def check_alone(d):
    """What must hold on any loop."""
    protocol = [e for e in d.log if e[0] not in CHECKS_ONLY]
    assert protocol[0] == ("connection_made",)
    assert [e[0] for e in protocol].count("connection_made") == 1
    lost = [i for i, e in enumerate(protocol) if e[0] == "connection_lost"]
    assert lost == [len(protocol) - 1], "connection_lost once, last"
    # eof_received may come more than once: where it returned True, asyncio
    # reads the end again after pause_reading() and resume_reading().
    eof = [i for i, e in enumerate(protocol) if e[0] == "eof_received"]
    if eof:
        assert all(e[0] != "data" for e in protocol[eof[0]:]), "data after eof_received"
    assert d.peer_sent.startswith(d.bytes_in), "the protocol got what the peer sent, in order"
    assert d.bytes_written.startswith(d.peer_got), "the peer got what was written, in order"
    ran = [e[1] for e in d.log if e[0] in ("soon", "timer")]
    assert len(ran) == len(set(ran)), "a callback ran twice"
    assert not d.cancelled_early & d.ran, "a cancelled callback ran"
    assert set(range(len(d.handles))) - d.cancelled_early == d.ran, "a callback never ran"
    whens = [d.fired[e[1]][1] for e in d.log if e[0] == "timer"]
    assert whens == sorted(whens), "timers out of order"
    # asyncio runs a timer up to its clock resolution early.
    assert all(ran_at >= when - 0.001 for ran_at, when in d.fired.values())
    assert not d.violations


# --- properties ---------------------------------------------------------------

RUNS = {}  # property: [examples, operations]


def run_both(prop, setup, ops):
    counts = RUNS.setdefault(prop, [0, 0])
    counts[0] += 1
    counts[1] += len(ops)
    before = fd_count()
    runs = {name: Driver(factory, setup).run(ops) for name, factory in LOOPS.items()}
    assert fd_count() == before, "an fd left open"
    for d in runs.values():
        check_alone(d)
    exact_flow = not runs["pyloop"].shared
    parted = None if exact_flow else parting(runs["pyloop"], runs["asyncio"])
    if parted is not None:
        event("the kernel emptied one loop's write buffer only")
    mine, theirs = (comparable(runs[name], exact_flow, parted) for name in ("pyloop", "asyncio"))
    for key in theirs:
        assert mine[key] == theirs[key], key
    for what in runs["pyloop"].log:
        if what[0] in ("pause_writing", "eof_received", "connection_lost"):
            event(" ".join(map(str, what)))


@pytest.fixture(scope="module", autouse=True)
def report():
    """Warms up (pyloop's I/O thread opens its fds with the first loop) and
    prints how many examples each property ran (visible with -s)."""
    pyloop.new_event_loop().close()
    start = time.monotonic()
    yield
    for prop, (examples, ops) in RUNS.items():
        print(f"\n{prop}: {examples} examples, {ops} operations")
    print(f"fuzzing took {time.monotonic() - start:.1f} s")


@fuzz_settings(90)
@given(SETUPS, ops_of(WRITE, WRITE, WRITE_BAD, WRITELINES, PAUSE_RESUME, PAUSE_RESUME, SET_LIMITS,
                      calls(*QUERIES, *ENDINGS), PEER_SEND, PEER_RECV, PEER_RECV, PEER_SHUTDOWN,
                      PEER_CLOSE, CALL_SOON, CALL_LATER, CANCEL, STEP))
def test_everything_interleaved(setup, ops):
    run_both("everything interleaved", setup, ops)


@fuzz_settings(40)
@given(SETUPS, ops_of(LARGE_WRITE, LARGE_WRITE, LARGE_WRITE, PAUSE_RESUME, PAUSE_RESUME,
                      SET_LIMITS, SET_LIMITS, calls("get_write_buffer_size"), PEER_RECV,
                      op("peer_send", st.integers(1, 4000))))
def test_flow_control(setup, ops):
    """Large writes, a peer that reads a little at a time, water marks moved
    about, reading paused and resumed; closed only at the end."""
    run_both("flow control", setup, ops)


@fuzz_settings(60)
@given(SETUPS, ops_of(WRITE, WRITE_BAD, WRITELINES, ENDING, ENDING, ENDING, QUERY, PAUSE_RESUME,
                      PEER_SHUTDOWN, PEER_SHUTDOWN, PEER_CLOSE, PEER_CLOSE, PEER_SEND, PEER_RECV,
                      CALL_SOON, CALL_LATER, CANCEL, max_size=15))
def test_ending_from_both_sides(setup, ops):
    """write_eof, close and abort, and the peer's shutdown, close and reset,
    in any order, with the operations after them."""
    run_both("ending from both sides", setup, ops)


@fuzz_settings(60)
@given(SETUPS, ops_of(op("set_write_buffer_limits", LIMITS, LIMITS, then=NOW),
                      calls("get_write_buffer_limits", "get_write_buffer_size", then=NOW),
                      op("write", NONEMPTY_SIZES, FORMS, then=NOW), max_size=12))
def test_water_marks(setup, ops):
    """set_write_buffer_limits with any values, the invalid ones raising
    asyncio's error, and what that does to a protocol mid-write."""
    run_both("water marks", setup, ops)


# --- what the fuzzing found -----------------------------------------------------


def test_writelines_after_close_is_still_sent(loop):
    """Found by test_everything_interleaved: writelines() after close(), while
    the buffer drains. On CPython 3.13.0 asyncio's raises TypeError there
    (its close() sets _write_ready to None, later versions leave that to
    connection_lost) after adding the data to the buffer, and its writer
    still sends it before the transport closes. pyloop's I/O thread was
    never handed that data, so the transport never closed (pyloop/_loop.py,
    _SocketTransport.writelines)."""
    a, b = socket.socketpair()
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)

    async def main():
        transport, _ = await loop.create_connection(asyncio.Protocol, sock=a)
        transport.write(b"x" * 100_000)  # more than the socket takes
        await asyncio.sleep(0.01)
        transport.close()
        try:
            transport.writelines([b"y" * 10])
        except TypeError:  # CPython 3.13.0, on both loops
            pass
        got = bytearray()
        while data := await loop.sock_recv(b, 1 << 16):
            got += data
        return bytes(got)

    b.setblocking(False)
    before = fd_count()
    try:
        got = loop.run_until_complete(asyncio.wait_for(main(), 10))
    finally:
        b.close()
    assert got == b"x" * 100_000 + b"y" * 10
    assert fd_count() == before - 2  # both ends closed


def differs_in_child(scenario, offload="auto", runs=40):
    """Runs `scenario` (the source of a run(factory) function) in a child
    process with one I/O thread, offloading when busy (the suite's setting)
    or always: first on asyncio's loop, then `runs` times on pyloop, as
    pyloop's outcome may depend on which of its threads is first. The first
    outcome of pyloop's that differs from asyncio's, or None."""
    script = textwrap.dedent(scenario) + textwrap.dedent(
        f"""
        expected = run(asyncio.SelectorEventLoop)
        for _ in range({runs}):
            got = run(pyloop.new_event_loop)
            if got != expected:
                print(f"asyncio: {{expected!r}}; pyloop: {{got!r}}")
                sys.exit(3)
        """
    )
    env = dict(os.environ, PYLOOP_IO_THREADS="1", PYLOOP_OFFLOAD=offload)
    out = subprocess.run([sys.executable, "-P", "-c", script], env=env, capture_output=True,
                         text=True, timeout=120)
    if out.returncode not in (0, 3):
        raise RuntimeError(out.stderr)
    return out.stdout.strip() or None


RESET_WHILE_SENDING = """
    import asyncio, socket, sys
    import pyloop

    class Protocol(asyncio.Protocol):
        def __init__(self):
            self.events = []
        def data_received(self, data):
            if self.events[-1:] != ["data_received"]:
                self.events.append("data_received")
        def eof_received(self):
            self.events.append("eof_received")
        def connection_lost(self, exc):
            self.events.append(f"connection_lost({type(exc).__name__})")

    def connected_pair(kind):
        if kind == "unix":
            return socket.socketpair()
        with socket.create_server(("127.0.0.1", 0)) as listener:
            peer = socket.socket()
            peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            peer.connect(listener.getsockname())
            sock, _ = listener.accept()
        return sock, peer

    def reset_while_sending(loop, kind, paused, unread):
        sock, peer = connected_pair(kind)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        transport, protocol = loop.run_until_complete(loop.create_connection(Protocol, sock=sock))
        if paused:
            transport.pause_reading()
        if unread:
            peer.sendall(b"y" * unread)  # for the transport, read or not
        transport.write(b"x" * 100_000)  # more than the sockets hold: the rest is buffered
        loop.run_until_complete(asyncio.sleep(0.01))
        peer.close()  # with data unread: the kernel answers with a reset
        loop.run_until_complete(asyncio.sleep(0.05))
        transport.abort()
        loop.run_until_complete(asyncio.sleep(0))
        return protocol.events

    def run(factory):
        loop = factory()
        try:
            return [reset_while_sending(loop, kind, paused, unread)
                    for kind in ("tcp", "unix") for paused in (False, True) for unread in (0, 1000)]
        finally:
            loop.close()
"""


@pytest.mark.parametrize("offload", ["auto", "always"])
def test_a_reset_while_sending_is_what_asyncio_reads(offload):
    """Found by test_everything_interleaved. A transport's buffer is being
    sent by its I/O thread when the peer resets the connection (TCP, or a
    Unix socket closed with data unread), with reading on or paused, with
    data for the protocol or without. asyncio's loop reads a ready socket
    before it writes to it, so its protocol gets the data, then
    connection_lost with the read's error, never eof_received; with reading
    paused, the send's error. Before, pyloop's I/O thread let its send take
    a TCP reset's error, so the loop's read found a clean end of the data
    (eof_received, then connection_lost), and, offloaded, reported a Unix
    socket's EPIPE (BrokenPipeError) where asyncio reads ECONNRESET."""
    assert differs_in_child(RESET_WHILE_SENDING, offload, runs=10) is None


DATA_WAITING_AT_RESUME = """
    import asyncio, socket, sys
    import pyloop

    class Protocol(asyncio.Protocol):
        def __init__(self):
            self.received = b""
        def data_received(self, data):
            self.received += data

    def run(factory):
        loop = factory()
        a, b = socket.socketpair()
        transport, protocol = loop.run_until_complete(loop.create_connection(Protocol, sock=a))
        transport.pause_reading()
        b.send(b"x")
        loop.run_until_complete(asyncio.sleep(0.01))
        transport.resume_reading()  # the byte is waiting in the socket
        loop.call_soon(loop.stop)
        loop.run_forever()  # one iteration
        got = protocol.received
        transport.close()
        loop.run_until_complete(asyncio.sleep(0))
        loop.close()
        b.close()
        return got
"""


@pytest.mark.parametrize("offload", ["auto", "always"])
def test_data_waiting_at_resume_reading(offload):
    """Found by test_flow_control. Data arrives while reading is paused;
    resume_reading() is called, and the loop runs one iteration. asyncio's
    loop polls the socket in that iteration and calls data_received (every
    time). Before, pyloop's I/O thread, registered again at once, took the
    data and handed it over an iteration or more later; now the loop has
    its own turn first, offloaded too (pyloop/native/fd_watch.cpp)."""
    assert differs_in_child(DATA_WAITING_AT_RESUME, offload) is None
