"""accept() hitting EMFILE: with the fd limit lowered, a server with clients
waiting to be accepted must not spin (its CPU over a window is measured), must
report 'socket.accept() out of system resource' to the exception handler as
asyncio does, and must accept the rest once fds are free again."""

import asyncio
import errno
import json
import resource
import sys

from faults.measure import cpu_seconds, fd_count

CLIENTS = 40
ACCEPTED_BEFORE_THE_LIMIT = 5
WINDOW = 1.0  # seconds stuck at the limit over which CPU is measured
# A loop that retried accept() at once would burn the whole window; asyncio's
# waits ACCEPT_RETRY_DELAY (1 s) between tries.
CPU_BOUND = 0.25 * WINDOW


class Echo(asyncio.Protocol):
    served = 0

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)
        Echo.served += 1


async def main(loop, kind):
    reported = []
    loop.set_exception_handler(lambda loop, context: reported.append(context))
    before = fd_count()
    server = await loop.create_server(Echo, "127.0.0.1", 0, start_serving=False)
    port = server.sockets[0].getsockname()[1]
    clients = await asyncio.create_subprocess_exec(
        sys.executable, "-P", "-m", "faults.run", "emfile_clients", kind, str(port), str(CLIENTS),
        stdout=asyncio.subprocess.PIPE)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (fd_count() + ACCEPTED_BEFORE_THE_LIMIT, hard))
    try:
        await server.start_serving()
        async with asyncio.timeout(20):
            while not reported:
                await asyncio.sleep(0.01)
        cpu_before = cpu_seconds()
        await asyncio.sleep(WINDOW)
        cpu = cpu_seconds() - cpu_before
        served_at_the_limit = Echo.served
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    out, _ = await asyncio.wait_for(clients.communicate(), 30)
    assert clients.returncode == 0 and json.loads(out) == {"echoed": CLIENTS}, out
    server.close()
    await server.wait_closed()

    for context in reported:
        assert context["message"] == "socket.accept() out of system resource", context
        assert context["exception"].errno == errno.EMFILE
    assert served_at_the_limit < CLIENTS and Echo.served == CLIENTS, (served_at_the_limit, Echo.served)
    assert cpu < CPU_BOUND, cpu
    await asyncio.sleep(0)
    after = fd_count()
    assert after == before, (before, after)
    return {"clients": CLIENTS, "served_at_the_limit": served_at_the_limit, "emfile_reports": len(reported),
            "cpu_seconds_over_window": round(cpu, 3), "window_seconds": WINDOW, "fds_before": before,
            "fds_after": after}
