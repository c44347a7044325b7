"""Audit rows written off the request path: a call hands its row over and answers at once.

Why: writing the row in the request made every answer wait for a commit, and the two workers' commits
wait for each other on SQLite's write lock. Measured with wrk at 4 connections on the bench's
200-resource chart, alternating runs: p99 30.7-33.4 ms with the write in the request, 29.0-30.8 ms
with this writer (29.2-30.8 with no audit at all).

Never lost where the old write kept it, and kept where the old write lost it:
* one thread per process writes the rows in the order they were handed over, all those waiting at
  once in one transaction (under load, one commit for many calls); a row leaves the queue only
  once its transaction is committed;
* a database fault keeps the rows queued and retries with a growing pause (the old in-request write
  logged the fault and dropped the row); only beyond MAX_PENDING rows waiting is a new row dropped,
  counted and logged, so a long outage cannot exhaust the worker's memory;
* a worker that exits (gunicorn's graceful stop, a restart) writes what is waiting before it goes
  (atexit; up to EXIT_WAIT_S), and a reader in the process (Store.audit_rows) sees every row handed
  over before it asked. A worker killed outright loses the rows of its last moments, at most what
  was handed over while one transaction committed.

Rows are ids, statuses and timings only (hooks._audited): nothing clinical waits in memory.
"""
from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from collections import deque
from typing import Callable

log = logging.getLogger("spine_cds.persistence")

MAX_PENDING = 100_000   # rows waiting at most (~30 MB); beyond, new rows are dropped and counted
MAX_BATCH = 1_000       # rows in one transaction
RETRY_S = (0.1, 0.5, 1.0, 2.0, 5.0)   # pauses after successive faults, the last repeated
EXIT_WAIT_S = 5.0       # how long an exiting process tries to write what is waiting


class AuditWriter:
    def __init__(self, write: Callable[[list[dict]], None], write_at_exit: Callable[[list[dict]], None] | None = None):
        self._write = write                  # one transaction for the rows given, or an exception
        # At exit the interpreter refuses new work to thread pools (concurrent.futures shuts them down
        # first): the store's bounded write runs on one, so the exit flush writes directly.
        self._write_at_exit = write_at_exit or write
        self.dropped = 0
        self._reset()
        # A forked copy (gunicorn's workers from the master; fhir_mappings.forked_reading's copy, which
        # never audits) gets fresh locks, no rows and no thread: the parent's thread does not exist
        # there, a lock it held at the fork would stay held, and the rows queued are the parent's to write.
        # (Run in the copy before any of its threads: two first calls cannot start two writers.)
        this = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: (writer := this()) is not None and writer._reset())

    def _reset(self) -> None:
        self._rows: deque[dict] = deque()
        self._changed = threading.Condition()
        self._writing = threading.Lock()     # one batch at a time: the thread's, a flush's or exit's
        self._started = False
        self._closed = False
        self._faults = 0

    def put(self, row: dict) -> None:
        with self._changed:
            if not self._started:
                self._start()
            if len(self._rows) >= MAX_PENDING:
                self.dropped += 1
                if self.dropped == 1 or self.dropped % 1000 == 0:
                    log.warning("audit: %d rows dropped: %d rows wait for the database", self.dropped, len(self._rows))
                return
            self._rows.append(row)
            self._changed.notify()

    def close(self, timeout: float) -> bool:
        """Write what waits, then let the thread end (Store.dispose); a later row starts a new one."""
        done = self.flush(timeout)
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        return done

    def pending(self) -> int:
        return len(self._rows)

    def flush(self, timeout: float, *, at_exit: bool = False) -> bool:
        """Write what is waiting, in this thread; True when nothing is left within timeout."""
        deadline = time.monotonic() + timeout
        while self._rows and time.monotonic() < deadline:
            if not self._write_batch(self._write_at_exit if at_exit else self._write):
                time.sleep(max(0.0, min(RETRY_S[0], deadline - time.monotonic())))
        return not self._rows

    def _start(self) -> None:
        self._started, self._closed = True, False
        threading.Thread(target=self._run, name="audit-writer", daemon=True).start()
        atexit.register(self._at_exit, os.getpid())   # a copy's exit is not its parent's

    def _at_exit(self, pid: int) -> None:
        if os.getpid() == pid and self._rows and not self.flush(EXIT_WAIT_S, at_exit=True):
            log.warning("audit: %d rows not written at exit: the database did not answer", len(self._rows))

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._rows:
                    if self._closed:
                        self._started = False
                        return
                    self._changed.wait()
            if self._write_batch(self._write):
                continue
            time.sleep(RETRY_S[min(max(self._faults, 1), len(RETRY_S)) - 1])

    def _write_batch(self, write: Callable[[list[dict]], None]) -> bool:
        """Write the oldest waiting rows in one transaction; False on a database fault (rows kept)."""
        with self._writing:
            batch = [self._rows[i] for i in range(min(len(self._rows), MAX_BATCH))]
            if not batch:
                return True
            try:
                write(batch)
            except Exception as exc:                # noqa: BLE001 - kept and retried, never raised to a caller
                self._faults += 1
                if self._faults == 1:
                    log.warning("audit: the database is unavailable (%s); %d rows wait", type(exc).__name__,
                                len(self._rows))
                return False
            if self._faults:
                log.warning("audit: the database answers again; writing %d waiting rows", len(self._rows))
                self._faults = 0
            for _ in batch:
                self._rows.popleft()               # only this lock's holder removes rows: these are the batch
            return True
