"""The fault and load scenarios that tests/test_faults.py runs.

Each scenario is a module with `async def main(loop, kind, *args) -> dict`: it drives
the loop it is given hard (many connections, large transfers, resets, a slow
reader, a full fd table, many threads), raises AssertionError if the loop
misbehaved, and returns the figures it measured. It runs in a child process
of its own (`python -m faults.run SCENARIO KIND`), because scenarios change
process-wide state (the fd limit), measure the process (RSS, CPU), and
because pyloop fixes its number of I/O threads when a process makes its first
loop."""
