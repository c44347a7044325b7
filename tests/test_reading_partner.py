"""A worker's reading partner (fhir_mappings.forked_reading.start_partner): a copy forked once, at the
worker's start, that is sent part of each chart large enough to share and reads it as a forked copy
would. Same facts as one process; whatever goes wrong with the partner (a reader bug, an answer that
does not pickle, death, a stall) the thread reads that part itself; it keeps nothing between charts;
it leaves with its worker.
"""
from __future__ import annotations

import os
import signal
import time

import pytest

from benchmarks.charts import bench_request
from cds_service import config, discovery, order_sign
from fhir_mappings import forked_reading
from fhir_mappings.forked_reading import STATS, read_split
from tests.test_forked_reading import _chart_requests, _worker_children, fake_loadavg, served_like_one_process


@pytest.fixture
def partner(monkeypatch):
    """This test process's partner, every chart shared with it; stopped (and reaped) after the test."""
    monkeypatch.setattr(forked_reading, "_idle_core", lambda: True)
    monkeypatch.setattr(forked_reading, "PARTNER_UNITS", 0)
    assert forked_reading.start_partner()
    child = forked_reading._PARTNER.child
    yield child
    forked_reading.stop_partner()
    _gone(child)


def _gone(pid: int, within: float = 5.0) -> None:
    """pid has ended and been reaped (no zombie left)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done = pid            # reaped already (stop_partner)
        if done:
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)
            return
        time.sleep(0.05)
    pytest.fail(f"process {pid} still runs")


def _facts(request: dict, tmp_path) -> str:
    settings = config.load(overrides={"AUTH": "off", "VAR_DIR": str(tmp_path)})
    return repr(order_sign.evaluate(request, discovery.service("spine-surgery-order-sign"), settings).facts)


def _one_process(request: dict, tmp_path, monkeypatch) -> str:
    with monkeypatch.context() as m:
        m.setattr(forked_reading, "_idle_core", lambda: False)
        return _facts(request, tmp_path)


@pytest.mark.parametrize("name,request_", list(_chart_requests()), ids=lambda v: v if isinstance(v, str) else "")
def test_the_partner_gives_the_facts_of_one_process(name, request_, partner, tmp_path, monkeypatch):
    one = _one_process(request_, tmp_path, monkeypatch)
    before = dict(STATS)
    two = _facts(request_, tmp_path)
    read = one != "None"           # an order no service rule covers: no chart is read
    assert STATS["shared"] == before["shared"] + read, "the chart was not shared with the partner"
    assert STATS["forked"] == before["forked"] and STATS["fell_back"] == before["fell_back"]
    assert two == one
    assert forked_reading._PARTNER is not None and forked_reading._PARTNER.child == partner


# --- a part shipped to the partner as a module-level function and its argument ---------------------

def _pairs(indices):
    return [(i, ("fact", i, "partner")) for i in indices]


def _raises(indices):
    raise RuntimeError("reader bug")


def _unpicklable(indices):
    return [(i, lambda: i) for i in indices]


def _sleeps(indices):
    time.sleep(60)
    return []


def _exits(indices):
    os._exit(3)


def _keeps(_):
    """What the partner holds after the part it read before: text caches, decoded texts, narrative memo."""
    from fhir_mappings import attachments, resources
    from fhir_mappings.build import TEXT_CACHES
    return [(0, ({type(c).__name__: c.cache_info().currsize for c in TEXT_CACHES if c.cache_info().currsize},
                 attachments._CHART.get(), resources._SOURCES.get()))]


def _split(ship_function, count=40):
    units = [10.0 if i % 4 == 0 else 1.0 for i in range(count)]
    read = lambda indices: [(i, ("fact", i)) for i in indices]     # noqa: E731 - the thread's reading
    return read_split(read, units, [u > 1 for u in units], ship=lambda indices: (ship_function, indices))


def test_the_partner_reads_the_first_texts_and_the_pairs_come_back_in_order(partner):
    out = _split(_pairs)
    assert [i for i, _ in out] == list(range(40))
    # texts (every 4th item, 10 units) first, in order, then coded items, up to 47 % of 130 units
    assert [i for i, fact in out if fact[-1] == "partner"] == [0, 1, 4, 8, 12, 16, 20]


@pytest.mark.parametrize("failure", [_raises, _unpicklable])
def test_a_part_the_partner_cannot_read_is_read_by_the_thread_and_the_partner_stays(failure, partner):
    before = STATS["fell_back"]
    assert _split(failure) == [(i, ("fact", i)) for i in range(40)]
    assert STATS["fell_back"] == before + 1
    assert forked_reading._PARTNER is not None and forked_reading._PARTNER.child == partner
    assert [fact[-1] for _, fact in _split(_pairs)].count("partner") == 7      # still reading


@pytest.mark.parametrize("how", ["dies while reading", "died before", "stalls", "stopped"])
def test_a_dead_or_stalled_partner_is_dropped_and_its_part_read_by_the_thread(how, partner, monkeypatch):
    monkeypatch.setattr(forked_reading, "MIN_WAIT_S", 0.3)
    if how == "died before":
        os.kill(partner, signal.SIGKILL)
        time.sleep(0.2)
    if how == "stopped":
        os.kill(partner, signal.SIGSTOP)
    shipped = {"dies while reading": _exits, "died before": _pairs, "stalls": _sleeps, "stopped": _pairs}[how]
    before = STATS["fell_back"]
    started = time.monotonic()
    assert _split(shipped) == [(i, ("fact", i)) for i in range(40)]
    assert time.monotonic() - started < 10
    assert STATS["fell_back"] == before + 1
    assert forked_reading._PARTNER is None             # not used again: large charts are forked per chart
    _gone(partner)
    forked_before = STATS["forked"]
    units = [10.0 if i % 4 == 0 else 1.0 for i in range(40)]
    read_split(lambda indices: [(i, None) for i in indices], units, [u > 1 for u in units], min_units=0,
               ship=lambda indices: (_pairs, indices))
    assert STATS["forked"] == forked_before + 1


def test_the_partner_keeps_nothing_between_charts(partner, tmp_path):
    assert _facts(bench_request(200, True), tmp_path) != "None"
    before = STATS["shared"]
    out = read_split(lambda indices: [(i, "thread") for i in indices], [1.0, 1.0], [True, False],
                     ship=lambda indices: (_keeps, indices))
    assert STATS["shared"] == before + 1
    [(caches, texts, narrative)] = [read for _, read in out if read != "thread"]
    assert caches == {} and texts is None and narrative is None


def test_the_partner_leaves_when_its_worker_does(partner):
    forked_reading._PARTNER.sock.close()        # as a worker's exit closes its end
    forked_reading._PARTNER = None
    _gone(partner)


def test_a_forked_copy_of_the_worker_does_not_use_its_partner(partner):
    pid = os.fork()
    if pid == 0:                                 # a per-chart copy, or any fork of the worker
        shared = [fact[-1] for _, fact in _split(_pairs)].count("partner")
        os._exit(0 if shared == 0 else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_idle_core_counts_other_processes_only(monkeypatch):
    monkeypatch.setattr(forked_reading, "_cores", lambda: 2)
    fake_loadavg(monkeypatch, b"1.00 1.00 1.00 2/80 1234\n")
    monkeypatch.setattr(forked_reading, "_own_running", lambda: 2)
    assert forked_reading._idle_core()        # this thread and the audit writer: the other core is free
    monkeypatch.setattr(forked_reading, "_own_running", lambda: 1)
    assert not forked_reading._idle_core()    # another process runs on the other core
    monkeypatch.undo()                        # the real /proc/self/task
    assert forked_reading._own_running() >= 1


def test_a_served_worker_reads_with_its_partner_and_both_leave_together(tmp_path, monkeypatch):
    """Over HTTP: each worker forks one partner at its start (named in /proc), a 200-resource chart with
    notes gets the answer of one process, and stopping the service leaves no partner behind."""
    monkeypatch.setattr(forked_reading, "_idle_core", lambda: False)
    partners = served_like_one_process(bench_request(200, True), tmp_path, calls=3)
    deadline = time.monotonic() + 10
    while _running(partners) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _running(partners)


def _running(pids: list[int]) -> list[int]:
    """Those of pids still running (an ended orphan may wait as a zombie for init to reap it)."""
    alive = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        if stat[stat.rfind(b")") + 2:stat.rfind(b")") + 3] != b"Z":
            alive.append(pid)
    return alive


def test_when_the_threads_own_part_fails_the_error_goes_on_and_the_partner_stays_in_step(partner):
    def read(indices):
        raise RuntimeError("reader bug in the thread")
    units = [10.0 if i % 4 == 0 else 1.0 for i in range(40)]
    with pytest.raises(RuntimeError, match="reader bug in the thread"):
        read_split(read, units, [u > 1 for u in units], ship=lambda indices: (_pairs, indices))
    assert forked_reading._PARTNER is not None and forked_reading._PARTNER.child == partner
    # the next chart (another size) gets its own answer, not the one the failed chart left behind
    out = _split(_pairs, count=60)
    assert [i for i, _ in out] == list(range(60))
    assert [i for i, fact in out if fact[-1] == "partner"] == [0, 1, 4, 8, 12, 16, 20, 24, 28, 32]


def test_a_served_worker_whose_partner_is_killed_answers_the_same_and_reaps_it(tmp_path, monkeypatch):
    """Over HTTP: a worker's partner killed (the OOM killer, an operator) between calls; every later call is
    answered 200 with the same answer, and the worker reaps its dead partner at its next chart. (One worker:
    which of two takes a connection is the kernel's choice, and a worker that gets no call reaps nothing.)"""
    monkeypatch.setattr(forked_reading, "_idle_core", lambda: False)

    def kill(master):
        [pid] = _worker_children(master)
        os.kill(pid, signal.SIGKILL)
    served_like_one_process(bench_request(200, True), tmp_path, calls=3, after_first=kill, partners=0, workers=1)


def test_a_partner_that_ended_is_reaped_at_the_next_chart_even_one_not_shared(partner, monkeypatch):
    monkeypatch.setattr(forked_reading, "_idle_core", lambda: False)     # the host busy: nothing shared
    os.kill(partner, signal.SIGKILL)
    time.sleep(0.3)
    assert read_split(lambda indices: [(i, None) for i in indices], [1.0, 1.0], [False, False],
                      ship=lambda indices: (_pairs, indices)) == [(0, None), (1, None)]
    assert forked_reading._PARTNER is None
    with pytest.raises(ProcessLookupError):
        os.kill(partner, 0)                      # reaped, not a zombie
