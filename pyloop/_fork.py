"""What a child made by os.fork() may still use.

A forked child has none of its parent's threads, so the native pools the
parent had started (the lookups' and the default executor's, both oneTBB)
can run nothing there. Such a child does what asyncio does instead: its
lookups and default executor calls go to a ThreadPoolExecutor. A child whose
parent never started them starts its own as usual. I/O threads are not
restarted in a child: its loops read and write their sockets themselves."""

import os

from . import _native

_parents_pools = (False, False)  # (lookups, calls): started before the fork


def _after_fork_in_child():
    global _parents_pools
    _native._forget_io_threads()  # nor do the I/O threads come along
    lookups, calls = _native._pools_started()
    _parents_pools = (_parents_pools[0] or lookups, _parents_pools[1] or calls)


os.register_at_fork(after_in_child=_after_fork_in_child)


def lookups_pool_usable():
    return not _parents_pools[0]


def calls_pool_usable():
    return not _parents_pools[1]
