"""The client side of many_connections: opens N connections to PORT and holds
them all open, then sends random-size messages on each and checks the echo
byte for byte."""

import asyncio
import random

from faults.measure import raise_fd_limit

MESSAGES = 2  # per connection, one after another
CONNECTING_AT_ONCE = 256  # the listen backlog stays far from full


class Client(asyncio.Protocol):
    def __init__(self, loop):
        self.received = bytearray()
        self.wanted = 0
        self.arrived = None
        self.lost = loop.create_future()

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.received += data
        if len(self.received) >= self.wanted and self.arrived and not self.arrived.done():
            self.arrived.set_result(None)

    def connection_lost(self, exc):
        self.lost.set_result(exc)


async def main(loop, kind, port, count):
    port, count = int(port), int(count)
    raise_fd_limit(count + 200)
    rng = random.Random(port)
    gate = asyncio.Semaphore(CONNECTING_AT_ONCE)

    async def connect():
        async with gate:
            _, client = await loop.create_connection(lambda: Client(loop), "127.0.0.1", port)
            return client

    clients = await asyncio.gather(*(connect() for _ in range(count)))
    sent = 0

    async def converse(client):
        nonlocal sent
        for _ in range(MESSAGES):
            message = rng.randbytes(int(2 ** rng.uniform(0, 15)))  # 1 B to 32 KiB
            start = len(client.received)
            client.wanted = start + len(message)
            client.arrived = loop.create_future()
            client.transport.write(message)
            await client.arrived
            assert client.received[start:] == message
            sent += len(message)

    await asyncio.wait_for(asyncio.gather(*(converse(c) for c in clients)), 120)
    for client in clients:
        client.transport.close()
    assert all(exc is None for exc in await asyncio.gather(*(c.lost for c in clients)))
    return {"bytes_echoed_and_compared": sent}
