"""The client side of emfile_accept: CLIENTS connections at once, each sends
a few bytes and waits for their echo, however long the server takes to
accept it."""

import asyncio


async def main(loop, kind, port, count):
    port, count = int(port), int(count)

    async def one(i):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        message = f"{i:08}".encode()
        writer.write(message)
        assert await reader.readexactly(len(message)) == message
        writer.close()
        await writer.wait_closed()

    await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(count))), 30)
    return {"echoed": count}
