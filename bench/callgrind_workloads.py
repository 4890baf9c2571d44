"""Loop-core workloads sized for instruction counting, which is repeatable on a
noisy machine where wall time is not:

    valgrind --tool=callgrind python -P bench/callgrind_workloads.py LOOP WORKLOAD

LOOP: asyncio, uvloop, rloop or pyloop. WORKLOAD: base (start-up only, to
subtract), gather (20k tasks), sleep0 (100 tasks x 200 switches) or
call_soon (100k callbacks).
"""
import asyncio
import importlib
import sys

name, work = sys.argv[1], sys.argv[2]
fac = asyncio.SelectorEventLoop if name == "asyncio" else importlib.import_module(name).new_event_loop
async def leaf(i): return i
async def gather_main(loop):
    ct = loop.create_task
    await asyncio.gather(*[ct(leaf(i)) for i in range(20000)])
async def worker():
    for _ in range(200):
        await asyncio.sleep(0)
async def sleep_main(loop):
    await asyncio.gather(*(worker() for _ in range(100)))
def call_soon(loop):
    f = lambda: None
    for i in range(100):
        for _ in range(1000): loop.call_soon(f)
        loop.call_soon(loop.stop); loop.run_forever()
loop = fac()
if work == "gather": loop.run_until_complete(gather_main(loop))
elif work == "sleep0": loop.run_until_complete(sleep_main(loop))
elif work == "base": pass
else: call_soon(loop)
loop.close()
