"""loop.getaddrinfo and loop.getnameinfo on the native executor: the lookups
run without the interpreter (pyloop/native/resolve.cpp) and return exactly
what socket.getaddrinfo and socket.getnameinfo return; arguments are checked
and encoded the way the socket module does it, so bad input raises the same
errors."""

import socket
from asyncio import base_events

from . import _fork


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
        if self._debug or not _fork.lookups_pool_usable():
            # asyncio's own path, for its debug-mode log of slow lookups, and
            # in a forked child whose parent's pool is gone.
            return await base_events.BaseEventLoop.getaddrinfo(
                self, host, port, family=family, type=type, proto=proto, flags=flags
            )
        found = await self._resolve(_encode_host(host), _encode_port(port), family, type, proto, flags)
        return [
            (_as_enum(af, socket.AddressFamily), _as_enum(kind, socket.SocketKind), pr, canon, addr)
            for af, kind, pr, canon, addr in found
        ]

    async def getnameinfo(self, sockaddr, flags=0):
        if not isinstance(sockaddr, tuple):
            raise TypeError("getnameinfo() argument 1 must be a tuple")
        if type(flags) is not int and not isinstance(flags, int):
            raise TypeError(f"'{type(flags).__name__}' object cannot be interpreted as an integer")
        host, port, flowinfo, scope_id = _parse_sockaddr(sockaddr)
        if not _fork.lookups_pool_usable():
            return await base_events.BaseEventLoop.getnameinfo(self, sockaddr, flags)
        return await self._name_info(host, port, flowinfo, scope_id, len(sockaddr) == 2, int(flags))


def _parse_sockaddr(sockaddr):
    """socket.getnameinfo's "si|II" parse of a sockaddr tuple, with its errors."""
    if not 2 <= len(sockaddr) <= 4 or not isinstance(sockaddr[0], str):
        raise TypeError("getnameinfo(): illegal sockaddr argument")
    host, *numbers = sockaddr
    for value in numbers:
        if not isinstance(value, int):
            raise TypeError(f"'{type(value).__name__}' object cannot be interpreted as an integer")
    port = numbers[0]
    if not -(2**31) <= port < 2**31:
        raise OverflowError("signed integer is greater than maximum")
    # "I" takes any integer, keeping its low 32 bits.
    flowinfo, scope_id = ([v & 0xFFFFFFFF for v in numbers[1:]] + [0, 0])[:2]
    if flowinfo > 0xFFFFF:
        raise OverflowError("getnameinfo(): flowinfo must be 0-1048575.")
    return host, int(port), flowinfo, scope_id
