"""The machine a bench ran on, and whether a server has finished the work a load run left it."""
from __future__ import annotations

import os
import platform
import time
from pathlib import Path


def _first(path: str, key: str) -> str | None:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def describe() -> dict:
    memory = _first("/proc/meminfo", "MemTotal")   # "24587040 kB"
    return {"host": platform.node(), "cpu": _first("/proc/cpuinfo", "model name") or platform.processor() or "unknown",
            "cores": os.cpu_count(), "ram_gib": round(int(memory.split()[0]) / 2**20, 1) if memory else None,
            "python": platform.python_version(), "kernel": platform.release(), "load_before": load_average()}


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def summary(machine: dict) -> str:
    after = f", after {' '.join(map(str, machine['load_after']))}" if machine.get("load_after") else ""
    return (f"{machine['cpu']} · {machine['cores']} cores · {machine['ram_gib']} GiB RAM · Python {machine['python']} · "
            f"Linux {machine['kernel']} · load average before {' '.join(map(str, machine['load_before']))}{after}")


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, CPU ticks used) of a process, from /proc/PID/stat; None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[1]), int(fields[11]) + int(fields[12])


def cpu_ticks(root: int) -> int:
    """CPU ticks used by `root` and the processes below it (the gunicorn master, its workers, and theirs:
    each worker's reading partner and forked copies)."""
    stats = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat:
                stats[int(entry.name)] = stat
    below, tree = {root}, set()
    while below:
        tree |= below
        below = {pid for pid, (parent, _) in stats.items() if parent in below and pid not in tree}
    return sum(stats[pid][1] for pid in tree if pid in stats)


def wait_idle(root: int, interval: float = 0.25, quiet_ticks: int = 2, limit: float = 120) -> float:
    """Wait until the server stops using CPU; returns the seconds waited.

    wrk stops at its deadline with requests still in flight; the server finishes them after, and a
    10,000-resource chart at 4 connections is seconds of work that would land on the next row."""
    start = time.perf_counter()
    last = cpu_ticks(root)
    while time.perf_counter() - start < limit:
        time.sleep(interval)
        now = cpu_ticks(root)
        if now - last <= quiet_ticks:
            break
        last = now
    return time.perf_counter() - start
