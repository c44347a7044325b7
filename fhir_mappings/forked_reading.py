"""Reading a large chart on two cores: a forked copy of the process reads part of the resources
(the first notes first) while the request's own thread reads the rest.

Why: a chart of 10,000 resources with 300 notes takes ~2 s of CPU to read, nearly all of it in
the per-resource readers, and a surgeon waits for it while the host's other core may be idle. The
readers are pure in their resource (and in the chart's decoded texts, read before the fork), so a
fork made after the texts are decoded sees everything the request's thread sees, and its part of
the answer is exactly what the thread would have read. Small charts are read in one process: a
fork costs a few milliseconds, more than reading them.

Never a wrong or lost answer: whatever goes wrong in the copy (an exception, a result that does
not pickle, a crash, no answer within the wait), the thread reads that part itself and the answer
is the same, only later. One copy at a time per process: a second large chart read meanwhile (on
another of the worker's threads) is read in one process, as the cores are then busy anyway.

The copy only reads and writes its result to a pipe, then leaves with os._exit (no atexit
handlers, no database or socket of the parent's touched). A fork copies the parent's locks as they
are: the readers take none (fhir_mappings.text's _once instead of 3.11's locked cached_property).

A served worker also has a reading partner (start_partner, below): a copy forked once when the worker
starts, sent its part of each chart instead of being forked for it. With no fork to pay, charts from
PARTNER_UNITS (a 50-resource chart with two notes) are shared, not only those over MIN_UNITS.
"""
from __future__ import annotations

import atexit
import gc
import logging
import os
import pickle
import select
import signal
import socket
import struct
import threading
import time
from typing import Callable, Sequence

log = logging.getLogger(__name__)

# Below this much work (in resource units: a coded resource is 1, a note's text 1 per CHARS_PER_UNIT
# characters) a chart is read in one process. A coded resource takes ~35 µs to read and a note's
# text ~1 µs a character (measured on the bench's charts), so 3,000 units are ~100 ms of reading,
# well above a fork's cost (~5-15 ms for a worker of a few hundred MB).
MIN_UNITS = 3000
CHARS_PER_UNIT = 30
# The copy's share of the work: the thread also unpickles the copy's result after its own part.
CHILD_SHARE = 0.47
# After its own part, the thread waits this long for the copy at least, or as long again as its
# own part took, whichever is longer, then reads the copy's part itself.
MIN_WAIT_S = 1.0

_ONE_COPY = threading.Lock()
STATS = {"forked": 0, "fell_back": 0, "busy": 0, "shared": 0, "partners": 0}     # how this process's readings went (for tests)


CPU_MAX = "/sys/fs/cgroup/cpu.max"     # a container's CPU limit (cgroup v2): "<quota> <period>" or "max ..."


def _cores() -> int:
    """The cores this process may use at once: those it may run on, and no more than its container's
    CPU limit allows (a pod limited to one CPU gains nothing from a copy, and pays for the fork)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    try:
        with open(CPU_MAX, "rb") as f:
            quota, period = f.read().split()[:2]
        if quota != b"max":
            cores = min(cores, int(int(quota) / int(period)))
    except (OSError, ValueError):
        pass      # no cgroup v2 limit to read: the affinity is the limit
    return cores


def _idle_core() -> bool:
    """Whether a core is free now: fewer tasks of other processes running or runnable on the host than
    cores less this thread's (/proc/loadavg's fourth field, counted at the moment it is read, less this
    process's running threads). Under load the copy would only take a core from another request, and a
    fork's cost would be added to its work (measured at 4 connections: 40 % fewer answers a second for
    1,000 resources with notes). This process's other threads are not counted: they share its
    interpreter lock with this one (the audit writer committing the last call's row while the next
    call is read made the host look busy at one connection, most calls)."""
    cores = _cores()
    if cores < 2:
        return False
    try:
        with open("/proc/loadavg", "rb") as f:
            running = int(f.read().split()[3].split(b"/")[0])
    except (OSError, ValueError, IndexError):
        return False     # no way to tell (not Linux): one process, as when busy
    return running - _own_running() + 1 < cores


def _own_running() -> int:
    """This process's threads running or runnable now, this one included (at least 1)."""
    running = 0
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return 1
    for task in tasks:
        try:
            with open(f"/proc/self/task/{task}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue     # the thread ended meanwhile
        if stat[stat.rfind(b")") + 2:stat.rfind(b")") + 3] == b"R":
            running += 1
    return max(running, 1)


def read_split(read: Callable[[list[int]], list[tuple[int, object]]], units: Sequence[float],
               texts: Sequence[bool], min_units: float | None = None,
               ship: Callable[[list[int]], tuple[Callable[[object], list], object]] | None = None,
               ) -> list[tuple[int, object]]:
    """read(all indices): (index, result) pairs in index order; for a large chart with a second core,
    a forked copy reads part of the indices and the pairs are merged back into index order.

    units: the work of each item; texts: whether an item's work is mostly reading text. Text is
    what the copy reads first: a note's many milliseconds of reading give a few facts, which come
    back through the pipe cheaply, where thousands of coded resources would give thousands of facts
    to unpickle (~350 ms for the bench's 10,000 resources).

    ship(indices): (a module-level function, its picklable argument) that read the same part in another
    process: what a partner (start_partner) is sent. With a partner alive, charts from PARTNER_UNITS
    up are shared with it (no fork to pay); without, from MIN_UNITS up with a forked copy."""
    count = len(units)
    total = sum(units)
    partner = _PARTNER if ship is not None and _PARTNER is not None and _PARTNER.owner == os.getpid() else None
    if partner is not None and _ended(partner.child):
        _drop_partner(partner, "had ended")     # reaped now, not left a zombie until a chart is shared
        partner = None
    floor = (PARTNER_UNITS if partner is not None else MIN_UNITS) if min_units is None else min_units
    if count < 2 or total < floor:
        return read(list(range(count)))
    if not _idle_core() or not _ONE_COPY.acquire(blocking=False):
        STATS["busy"] += 1
        return read(list(range(count)))
    try:
        # The copy takes the first texts in order, then coded items, up to its share: a run of notes
        # in order keeps what one note shares with the next (copied-forward sentences are read once).
        share, taken = total * CHILD_SHARE, 0.0
        child: list[int] = []
        for kind in (True, False):
            for index in range(count):
                if texts[index] != kind:
                    continue
                if child and taken + units[index] > share:
                    break
                child.append(index)
                taken += units[index]
        if len(child) == count:
            child.pop()
        child.sort()
        chosen = set(child)
        rest = [i for i in range(count) if i not in chosen]
        if partner is not None:
            return _read_with_partner(partner, child, rest, read, ship)
        return _read_forked(child, rest, read)
    finally:
        _ONE_COPY.release()


def _read_forked(child: list[int], rest: list[int], read: Callable[[list[int]], list]) -> list:
    pipe = ()
    try:
        pipe = os.pipe()
        pid = os.fork()
    except OSError:                                # no pipe or no fork (a process limit): one process
        for fd in pipe:
            os.close(fd)
        return read(sorted(child + rest))
    read_fd, write_fd = pipe
    if pid == 0:                                   # the copy
        os.close(read_fd)
        _child(write_fd, lambda: read(child))
    os.close(write_fd)
    STATS["forked"] += 1
    started = time.monotonic()
    # No collection in this process while the copy runs: a full one walks the chart's objects and
    # copies each page it touches from the copy's (measured: this part of the reading 1.7 s with
    # collections, 0.8-1.2 s without). A served call has the collector paused already
    # (cds_service/collector.py); this covers the other callers (the CLI, the sandbox). One forked
    # reading at a time (_ONE_COPY) pairs each disable with its enable.
    collecting = gc.isenabled()
    gc.disable()
    try:
        try:
            own = read(rest)
        except BaseException:
            _reap(pid, kill=True)
            raise
        try:
            theirs = _collect(pid, read_fd, deadline=_wait_until(started))
        except Exception:                           # noqa: BLE001 - the pipe itself failed: read it here
            log.warning("forked reading: waiting for the copy failed; the thread read its part itself", exc_info=True)
            _reap(pid, kill=True)
            theirs = None
    finally:
        os.close(read_fd)
        if collecting:
            gc.enable()
    if theirs is None:
        STATS["fell_back"] += 1
        theirs = read(child)
    return _merge(theirs, own)


def _wait_until(started: float) -> float:
    """When to stop waiting for the other process's part, the thread's own read since `started`: MIN_WAIT_S
    from now, or as long again as the thread's part took, whichever is later."""
    return time.monotonic() + max(MIN_WAIT_S, time.monotonic() - started)


def _merge(first: list[tuple[int, object]], second: list[tuple[int, object]]) -> list[tuple[int, object]]:
    return sorted(first + second, key=lambda pair: pair[0])


def _child(write_fd: int, read: Callable[[], list]) -> None:
    code = 0
    try:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP):
            signal.signal(signum, signal.SIG_DFL)    # a worker's handlers are not the copy's
        # The copy lives for one reading: its cycles die with it. A collection would walk the
        # parent's objects and copy every page it touches (fork shares them copy-on-write).
        gc.disable()
        payload = pickle.dumps(read(), protocol=pickle.HIGHEST_PROTOCOL)
        view = memoryview(payload)
        while view:
            view = view[os.write(write_fd, view):]
    except BaseException:                           # noqa: BLE001 - the thread reads this part itself
        code = 1
    finally:
        os._exit(code)


def _collect(pid: int, read_fd: int, deadline: float) -> list | None:
    """The copy's result, or None (it failed, or gave nothing within the deadline: it is killed)."""
    chunks = []
    waiting = select.poll()       # not select.select: a busy worker's descriptors may be numbered over 1024
    waiting.register(read_fd, select.POLLIN)
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not waiting.poll(left * 1000):
            _reap(pid, kill=True)
            log.warning("forked reading gave no answer in time; the thread read its part itself")
            return None
        chunk = os.read(read_fd, 1 << 20)
        if not chunk:
            break
        chunks.append(chunk)
    status = _reap(pid, kill=False)
    if not chunks:
        log.warning("forked reading failed (exit status %s); the thread read its part itself", status)
        return None
    # A whole result unpickles; a torn one (the copy died while writing) does not.
    try:
        return pickle.loads(b"".join(chunks))
    except Exception:                               # noqa: BLE001 - a torn result is read again
        log.warning("forked reading gave an unreadable result; the thread read its part itself")
        return None


def _reap(pid: int, kill: bool) -> int | None:
    if kill:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:
        return None
    return os.waitstatus_to_exitcode(status)


# --- a reading partner: a copy forked once, at a worker's start -----------------------------------
# Why: a fork costs ~7-15 ms (more for a large worker), so charts of a few notes were read in one
# process. A partner forked when the worker starts (no patient's data in memory yet, the rules loaded)
# is sent its part of a chart instead: the resources and their decoded texts, pickled (~1 ms for the
# bench's 200-resource chart), and reads it as a forked copy would. It keeps nothing between parts:
# the part it was sent and its text caches are dropped before it answers (fhir_mappings.build).
# Everything that goes wrong with it (an exception, a crash, a stall, a torn answer) is handled as for
# a forked copy: the thread reads that part itself. A partner that stalled or died is not used again;
# the worker then forks per chart as before (a partner re-forked mid-request would carry that request's
# memory for its lifetime).

# With a partner, a chart of this much work (resource units) or more is shared: ~1 ms of sending and
# answering against ~10 ms of reading (200 units is ~7 ms of reading on the bench's machines).
PARTNER_UNITS = 300
PARTNER_NAME = b"spine-cds-read"     # its name in ps and /proc/<pid>/comm


class _Partner:
    def __init__(self, child: int, sock, owner: int):
        self.owner = owner        # the process it reads for (a forked copy of that process must not use it)
        self.child = child        # the partner's pid
        self.sock = sock


_PARTNER: _Partner | None = None
_LENGTH = struct.Struct("!Q")


def start_partner() -> bool:
    """Fork this process's reading partner (call it where no patient's data is in memory: gunicorn's
    post_worker_init). False when it cannot be forked: charts are then read as without one."""
    global _PARTNER
    if _PARTNER is not None and _PARTNER.owner == os.getpid():
        return True
    try:
        ours, theirs = socket.socketpair()
    except OSError:
        return False
    try:
        pid = os.fork()
    except OSError:
        ours.close()
        theirs.close()
        return False
    if pid == 0:                                             # the partner
        ours.close()
        _serve(theirs)
    theirs.close()
    _PARTNER = _Partner(pid, ours, os.getpid())
    STATS["partners"] += 1
    atexit.register(stop_partner)     # a worker leaving gracefully reaps its partner (gunicorn's PID 1 reaps orphans)
    return True


def stop_partner() -> None:
    """End this process's partner (it also ends by itself when this process's end of the socket closes)."""
    global _PARTNER
    partner, _PARTNER = _PARTNER, None
    if partner is not None and partner.owner == os.getpid():
        partner.sock.close()
        _reap(partner.child, kill=True)


def _ended(pid: int) -> bool:
    try:
        return os.waitpid(pid, os.WNOHANG)[0] == pid
    except ChildProcessError:
        return True


def _drop_partner(partner: _Partner, why: str) -> None:
    global _PARTNER
    log.warning("reading partner %s %s; it is not used again: its part is read by the thread, and large charts "
                "are forked per chart", partner.child, why)
    STATS["fell_back"] += 1
    if _PARTNER is partner:
        _PARTNER = None
    try:
        partner.sock.close()
    finally:
        _reap(partner.child, kill=True)


def _read_with_partner(partner: _Partner, child: list[int], rest: list[int], read, ship) -> list:
    started = time.monotonic()
    try:
        function, argument = ship(child)
        _send(partner.sock, pickle.dumps((function, argument), protocol=pickle.HIGHEST_PROTOCOL))
    except Exception:                               # noqa: BLE001 - not sent: the thread reads it all
        _drop_partner(partner, "could not be sent its part")
        return read(sorted(child + rest))
    STATS["shared"] += 1
    try:
        own = read(rest)
    except BaseException:
        # The partner's answer is still taken (it must not be read as the next chart's), then the error goes on.
        if _receive(partner.sock, deadline=_wait_until(started)) is None:
            _drop_partner(partner, "gave no answer in time or died")
        raise
    answer = _receive(partner.sock, deadline=_wait_until(started))
    theirs = None
    if answer is None:
        _drop_partner(partner, "gave no answer in time or died")
    else:
        try:
            done, theirs = pickle.loads(answer)
        except Exception:                           # noqa: BLE001 - a torn answer
            _drop_partner(partner, "gave an unreadable answer")
        else:
            if not done:
                log.warning("reading partner failed on its part (%s); the thread read it itself", theirs)
                STATS["fell_back"] += 1
                theirs = None
    if theirs is None:
        theirs = read(child)
    return _merge(theirs, own)


def _send(sock, payload: bytes) -> None:
    sock.sendall(_LENGTH.pack(len(payload)) + payload)


def _receive(sock, deadline: float | None = None) -> bytes | None:
    """One message, or None: the other end closed, or (with a deadline) nothing whole came in time."""
    waiting = select.poll()
    waiting.register(sock.fileno(), select.POLLIN)
    chunks, wanted, header = [], _LENGTH.size, True
    while wanted:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not waiting.poll(left * 1000):
                return None
        chunk = sock.recv(min(wanted, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        wanted -= len(chunk)
        if not wanted and header:
            (wanted,), chunks, header = _LENGTH.unpack(b"".join(chunks)), [], False
    return b"".join(chunks)


def _serve(sock) -> None:
    """The partner's life: read each part it is sent, answer, keep nothing; leave when the worker's end
    closes (the worker exited or stopped it)."""
    code = 0
    try:
        for signum in (signal.SIGTERM, signal.SIGQUIT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2,
                       signal.SIGWINCH, signal.SIGABRT):
            signal.signal(signum, signal.SIG_DFL)    # a worker's handlers are not the partner's
        signal.signal(signal.SIGINT, signal.SIG_IGN)   # ^C in a terminal: the worker ends it (its socket closes)
        _name_self()
        while True:
            message = _receive(sock)
            if message is None:
                break
            try:
                function, argument = pickle.loads(message)
                del message
                answer = pickle.dumps((True, function(argument)), protocol=pickle.HIGHEST_PROTOCOL)
            except Exception as exc:                # noqa: BLE001 - the worker reads the part itself
                answer = pickle.dumps((False, f"{type(exc).__name__}: {exc}"))
            function = argument = None
            _send(sock, answer)
            del answer
    except BaseException:                           # noqa: BLE001 - the worker sees the socket close
        code = 1
    finally:
        os._exit(code)


def _name_self() -> None:
    try:
        with open(f"/proc/{os.getpid()}/comm", "wb") as f:
            f.write(PARTNER_NAME)
    except OSError:
        pass
