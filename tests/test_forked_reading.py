"""A large chart read on two cores gives the facts one process gives (fhir_mappings.forked_reading).

A forked copy reads the first notes (and, if its share is not full, coded resources) while the
request's thread reads the rest; the pairs are merged back into the chart's order. Whatever goes
wrong in the copy (an exception, a crash, a stall, a result that does not pickle) the thread reads
that part itself: the same facts, later, and no child process left behind.
"""
from __future__ import annotations

import gc
import os
import re
import threading
import time

import orjson
import pytest
import requests

from benchmarks.charts import bench_request
from cds_service.synthetic import SCENARIOS, SHAPES, synthesize
from cds_service import config, discovery, order_sign
from fhir_mappings import forked_reading
from fhir_mappings.forked_reading import STATS, read_split
from tests.conftest import SERVICE_PATH, start_service
from tests.stubs import fhir, seeds


def _facts(request: dict, forked: bool, monkeypatch, tmp_path) -> str:
    """The facts order_sign.evaluate reads from the request, in two processes or in one."""
    monkeypatch.setattr(forked_reading, "MIN_UNITS", 0 if forked else float("inf"))
    monkeypatch.setattr(forked_reading, "_idle_core", lambda: True)
    settings = config.load(overrides={"AUTH": "off", "VAR_DIR": str(tmp_path)})
    return repr(order_sign.evaluate(request, discovery.service("spine-surgery-order-sign"), settings).facts)


def _no_children() -> bool:
    try:
        return os.waitpid(-1, os.WNOHANG) == (0, 0)
    except ChildProcessError:
        return True


def _chart_requests():
    yield "seed-001", fhir.make_request(seeds.seed_001_orders(), seeds.seed_001_chart())
    yield "bench-200-notes", bench_request(200, True)
    yield "bench-1000-notes", bench_request(1000, True)
    shapes = sorted(SHAPES)
    for n, scenario in enumerate(sorted(SCENARIOS)):      # every scenario, the shapes in turn
        shape = shapes[n % len(shapes)]
        yield f"{scenario}-{shape}", synthesize(scenario, 1, 3, shape)[0].request


@pytest.mark.parametrize("name,request_", list(_chart_requests()), ids=lambda v: v if isinstance(v, str) else "")
def test_forked_reading_gives_the_facts_of_one_process(name, request_, monkeypatch, tmp_path):
    one = _facts(request_, False, monkeypatch, tmp_path)
    forked_before, fell_back_before = STATS["forked"], STATS["fell_back"]
    two = _facts(request_, True, monkeypatch, tmp_path)
    read = one != "None"           # an order no service rule covers: no chart is read
    assert STATS["forked"] == forked_before + read, "the chart was not read in two processes"
    assert STATS["fell_back"] == fell_back_before
    assert two == one
    assert _no_children()


def _items(count: int) -> list[tuple[int, object]]:
    return [(i, ("fact", i)) for i in range(count)]


def _reader(child_does=None):
    """read(indices): each index's pair; in the forked copy (another pid) child_does() first."""
    parent = os.getpid()

    def read(indices):
        if os.getpid() != parent and child_does is not None:
            return child_does(indices)
        return [(i, ("fact", i)) for i in indices]
    return read


def _split(read, count=40, **settings):
    units = [10.0 if i % 4 == 0 else 1.0 for i in range(count)]
    return read_split(read, units, [u > 1 for u in units], min_units=0, **settings)


@pytest.fixture
def idle(monkeypatch):
    monkeypatch.setattr(forked_reading, "_idle_core", lambda: True)


def test_the_copy_reads_the_first_texts_and_the_pairs_come_back_in_order(idle):
    def in_child(indices):
        return [(i, ("fact", i, "copy")) for i in indices]
    before = STATS["forked"]
    out = _split(_reader(in_child))
    assert STATS["forked"] == before + 1
    assert [i for i, _ in out] == list(range(40))
    by_copy = [i for i, fact in out if fact[-1] == "copy"]
    # texts (every 4th item, 10 units) first, in order, then coded items, up to 47 % of 130 units
    assert by_copy == [0, 1, 4, 8, 12, 16, 20]
    assert _no_children()
    assert gc.isenabled()          # collections were paused only while the copy ran


@pytest.mark.parametrize("failure", ["raises", "exits", "unpicklable", "torn"])
def test_a_failed_copy_is_read_again_by_the_thread(failure, idle, monkeypatch):
    real_write = os.write

    def torn(fd, data):                 # the copy dies half way through writing its result
        real_write(fd, bytes(data[:len(data) // 2]))
        os._exit(0)

    def in_child(indices):
        if failure == "raises":
            raise RuntimeError("reader bug")
        if failure == "exits":
            os._exit(3)
        if failure == "unpicklable":
            return [(i, lambda: i) for i in indices]
        monkeypatch.setattr(forked_reading.os, "write", torn)   # in the copy only
        return [(i, ("fact", i)) for i in indices]
    before = STATS["fell_back"]
    assert _split(_reader(in_child)) == _items(40)
    assert STATS["fell_back"] == before + 1
    assert _no_children()


def test_a_stalled_copy_is_killed_and_its_part_read_by_the_thread(idle, monkeypatch):
    monkeypatch.setattr(forked_reading, "MIN_WAIT_S", 0.3)
    pids = []

    def in_child(indices):
        time.sleep(60)
        return []
    real_fork = os.fork

    def fork():
        pid = real_fork()
        if pid:
            pids.append(pid)
        return pid
    monkeypatch.setattr(forked_reading.os, "fork", fork)
    started = time.monotonic()
    assert _split(_reader(in_child)) == _items(40)
    assert time.monotonic() - started < 10
    assert pids and _no_children()
    with pytest.raises(ProcessLookupError):
        os.kill(pids[0], 0)          # reaped: gone, not a zombie


def test_small_charts_and_busy_hosts_are_read_in_one_process(monkeypatch):
    before = dict(STATS)
    read = _reader(lambda indices: pytest.fail("forked"))
    units = [1.0] * 10
    assert read_split(read, units, [False] * 10) == _items(10)          # far below MIN_UNITS
    monkeypatch.setattr(forked_reading, "_idle_core", lambda: False)
    assert read_split(read, units, [False] * 10, min_units=0) == _items(10)
    assert STATS["forked"] == before["forked"] and STATS["busy"] == before["busy"] + 1


def test_one_copy_at_a_time_the_other_thread_reads_alone(idle):
    results = {}

    def slow_in_child(indices):
        time.sleep(0.5)
        return [(i, ("fact", i)) for i in indices]

    def first():
        results["first"] = _split(_reader(slow_in_child))
    thread = threading.Thread(target=first)
    before = dict(STATS)
    thread.start()
    time.sleep(0.1)                               # the first holds the copy
    results["second"] = _split(_reader(lambda indices: pytest.fail("second copy")))
    thread.join()
    assert results["first"] == results["second"] == _items(40)
    assert STATS["forked"] == before["forked"] + 1 and STATS["busy"] == before["busy"] + 1
    assert _no_children()


def fake_loadavg(monkeypatch, text: bytes) -> None:
    """/proc/loadavg reads as text; every other file as it is."""
    import builtins
    import io
    real_open = builtins.open

    def fake(path, *args, **kwargs):
        return io.BytesIO(text) if path == "/proc/loadavg" else real_open(path, *args, **kwargs)
    monkeypatch.setattr(builtins, "open", fake)


def test_idle_core_reads_the_running_tasks_of_the_host(monkeypatch):
    monkeypatch.setattr(forked_reading, "_cores", lambda: 2)
    monkeypatch.setattr(forked_reading, "_own_running", lambda: 1)     # only this thread of this process runs
    fake_loadavg(monkeypatch, b"0.50 0.40 0.30 1/80 1234\n")
    assert forked_reading._idle_core()                   # only this thread runs: one core idle
    fake_loadavg(monkeypatch, b"2.10 1.90 1.80 2/80 1234\n")
    assert not forked_reading._idle_core()               # both cores taken
    fake_loadavg(monkeypatch, b"garbled\n")
    assert not forked_reading._idle_core()               # cannot tell: one process
    monkeypatch.setattr(forked_reading, "_cores", lambda: 1)
    fake_loadavg(monkeypatch, b"0.10 0.10 0.10 1/80 1234\n")
    assert not forked_reading._idle_core()               # one core: nothing to share


def test_a_served_large_chart_gets_the_answer_of_one_process(tmp_path, monkeypatch):
    """Over HTTP, a chart large enough to be read on two cores (when one is idle: the served worker
    decides) gets the answer that reading it in one process gives, and the worker keeps no copy."""
    monkeypatch.setattr(forked_reading, "MIN_UNITS", float("inf"))
    monkeypatch.setattr(forked_reading, "PARTNER_UNITS", float("inf"))
    served_like_one_process(bench_request(1000, True), tmp_path, calls=2)


def served_like_one_process(request_: dict, tmp_path, calls: int, after_first=None, partners: int = 2,
                            workers: int = 2) -> list[int]:
    """POST the request `calls` times to a served service: each answer is the one the app gives in this
    process (as the caller set it); below each worker only its reading partner runs (`partners` of them
    at the end: up to twice as many calls again are posted until then). after_first(the server's master
    pid) runs after the first call."""
    from cds_service.app import create_app
    app = create_app(environ={"CDS_VAR_DIR": str(tmp_path / "one"), "CDS_AUTH": "off"})
    expected = _scrub(app.test_client().post(SERVICE_PATH, json=request_).get_json())
    server = start_service(tmp_path, workers=workers)
    try:
        for call in range(3 * calls):
            if call >= calls and len(_worker_children(server.pid)) == partners:
                break         # past `calls`, posting on only until every worker has met its partner's end
            answer = requests.post(server.url + SERVICE_PATH, data=orjson.dumps(request_),
                                   headers={"Content-Type": "application/json"}, timeout=60)
            assert answer.status_code == 200
            assert _scrub(answer.json()) == expected
            if call == 0 and after_first is not None:
                after_first(server.pid)
        children = _worker_children(server.pid)
        names = set()
        for pid in children:
            with open(f"/proc/{pid}/comm", "rb") as f:
                names.add(f.read().strip())
        # one partner per worker, named in /proc; no forked copy left
        assert len(children) == partners and names <= {forked_reading.PARTNER_NAME}, (children, names)
    finally:
        server.stop()
    return children


_VOLATILE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
                       r"|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)?", re.I)


def _scrub(value):
    """The answer without what differs from call to call (card uuids, times)."""
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return _VOLATILE.sub("<volatile>", value) if isinstance(value, str) else value


def _worker_children(master: int) -> list[int]:
    """Processes below the gunicorn workers (a forked reading left behind)."""
    def children(pid):
        try:
            with open(f"/proc/{pid}/task/{pid}/children") as f:
                return [int(p) for p in f.read().split()]
        except OSError:
            return []
    return [grandchild for worker in children(master) for grandchild in children(worker)]


@pytest.mark.parametrize("cpu_max, cores", [
    (None, 4),                       # no cgroup v2 file: the affinity
    (b"max 100000\n", 4),            # no limit
    (b"100000 100000\n", 1),         # a pod limited to one CPU: no copy
    (b"150000 100000\n", 1),         # 1.5 CPUs: one whole core
    (b"800000 100000\n", 4),         # more than the affinity allows
])
def test_cores_are_those_of_the_affinity_within_the_container_limit(cpu_max, cores, monkeypatch, tmp_path):
    monkeypatch.setattr(forked_reading.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    path = tmp_path / "cpu.max"
    if cpu_max is not None:
        path.write_bytes(cpu_max)
    monkeypatch.setattr(forked_reading, "CPU_MAX", str(path))
    assert forked_reading._cores() == cores


def test_a_worker_with_more_than_1024_descriptors_still_reads_in_two_processes(idle, monkeypatch):
    """A busy asyncio worker's descriptors may be numbered past select()'s limit of 1024."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2048:
        pytest.skip(f"the hard limit of open files ({hard}) leaves no descriptor past 1024")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 2048), hard))
    real_pipe = os.pipe

    def high_pipe():
        read_fd, write_fd = real_pipe()
        high = (os.dup2(read_fd, 1500), os.dup2(write_fd, 1501))
        os.close(read_fd)
        os.close(write_fd)
        return high
    monkeypatch.setattr(forked_reading.os, "pipe", high_pipe)
    try:
        before = dict(STATS)
        assert _split(_reader(lambda indices: [(i, ("fact", i)) for i in indices])) == _items(40)
        assert STATS["forked"] == before["forked"] + 1 and STATS["fell_back"] == before["fell_back"]
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_failing_pipe_is_read_around(idle, monkeypatch):
    """Whatever goes wrong while waiting for the copy (here os.read fails), the thread reads its part."""
    def broken(fd, size):
        raise OSError(5, "Input/output error")
    monkeypatch.setattr(forked_reading.os, "read", broken)
    before = STATS["fell_back"]
    assert _split(_reader()) == _items(40)
    assert STATS["fell_back"] == before + 1 and _no_children()


@pytest.mark.parametrize("fails", ["pipe", "fork"])
def test_no_pipe_or_no_fork_reads_in_one_process_and_leaks_no_descriptor(fails, idle, monkeypatch):
    def refuse(*args):
        raise OSError(11, "Resource temporarily unavailable")
    monkeypatch.setattr(forked_reading.os, fails, refuse)
    before = set(os.listdir("/proc/self/fd"))
    assert _split(_reader(lambda indices: pytest.fail("forked"))) == _items(40)
    assert set(os.listdir("/proc/self/fd")) == before
