# The public face of pyloop.Loop for type checkers: asyncio's event loop API,
# as typeshed types it. The native core and the mixins behind it are
# implementation (pyloop/_loop.py).
import asyncio

class Loop(asyncio.SelectorEventLoop):
    def __init__(self) -> None: ...

def new_event_loop() -> Loop: ...
