"""loop.getaddrinfo on the native executor: the lookup runs without the
interpreter (pyloop/native/resolve.cpp) and returns exactly what
socket.getaddrinfo returns; arguments are checked and encoded the way
socket.getaddrinfo does it, so bad input raises the same errors."""

import socket
from asyncio import base_events


def _encode_host(host):
    if host is None or isinstance(host, bytes):
        return host
    if isinstance(host, str):
        return host.encode("idna")
    raise TypeError("getaddrinfo() argument 1 must be string or None")


def _encode_port(port):
    if port is None or isinstance(port, bytes):
        return port
    if type(port) is int:
        return str(port).encode()
    if isinstance(port, str):
        return port.encode()
    raise OSError("Int or String expected")


def _as_enum(value, enum_class):
    try:
        return enum_class(value)
    except ValueError:
        return value


class ResolverMethods:
    """Mixed into pyloop.Loop between the native core and asyncio's loop."""

    async def getaddrinfo(self, host, port, *, family=0, type=0, proto=0, flags=0):
        if self._debug:
            # asyncio's own path, for its debug-mode log of slow lookups.
            return await base_events.BaseEventLoop.getaddrinfo(
                self, host, port, family=family, type=type, proto=proto, flags=flags
            )
        found = await self._resolve(_encode_host(host), _encode_port(port), family, type, proto, flags)
        return [
            (_as_enum(af, socket.AddressFamily), _as_enum(kind, socket.SocketKind), pr, canon, addr)
            for af, kind, pr, canon, addr in found
        ]
