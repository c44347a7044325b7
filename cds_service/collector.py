"""Python's cyclic garbage collector, paused while service calls run.

Why: a call's chart is a tree of dicts and lists, freed by reference counting when the call ends;
the collector still walked it, again and again while it grew and once whole (measured: 0.2-0.4 s of
a 10,000-resource call with notes, 50-60 ms of one without). A call leaves ~14 objects in cycles
whatever the chart's size (tests/test_collector.py counts them), so collecting between calls loses
nothing.

The collector is the process's, and a worker's threads run several calls at once: it is paused
while any call runs and resumes when the last one ends. The routes pause it before the request is
handled and resume it at teardown (cds_service/hooks.py), once the view has returned: the first
collection after resuming then no longer walks the call's parsed body, which the view's frame held
until then. A worker that is never idle still collects: a call that ends more than COLLECT_EVERY_S
after the last collection runs one (on its own thread, after its answer is built), so cycles never
pile up for longer.
"""
from __future__ import annotations

import gc
import threading
import time

COLLECT_EVERY_S = 10.0

_lock = threading.Lock()
_running = 0             # calls in flight in this process
_paused = False          # whether this module turned the collector off (and so must turn it on)
_last_collection = time.monotonic()


def pause() -> None:
    """A call starts: the collector is paused (if on) until the last call in flight resumes."""
    global _running, _paused
    with _lock:
        _running += 1
        if _running == 1 and gc.isenabled():
            gc.disable()
            _paused = True


def resume() -> None:
    """A call ended (each pause has one resume)."""
    global _running, _paused, _last_collection
    collect = False
    with _lock:
        _running -= 1
        if _running == 0 and _paused:
            _paused = False
            gc.enable()
            _last_collection = time.monotonic()
        elif _paused and time.monotonic() - _last_collection > COLLECT_EVERY_S:
            _last_collection = time.monotonic()
            collect = True
    if collect:
        gc.collect()
