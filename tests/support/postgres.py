"""A throwaway PostgreSQL server: initdb into a temporary directory, postgres on 127.0.0.1, stopped by PID.

    with PostgresServer.start() as pg:
        url = pg.create_database("t1")   # postgresql+psycopg://postgres@127.0.0.1:PORT/t1

The binaries come from Debian's `postgresql` package (/usr/lib/postgresql/<version>/bin, newest
first) or from PATH. PostgreSQL refuses to run as root, so under root both initdb and postgres run
as the `postgres` user (else `nobody`) and the temporary directory is handed to that user. Trust
authentication on 127.0.0.1 only, fsync off: it is a test server. Stopping sends SIGINT (fast
shutdown: disconnects clients), then SIGKILL to its process group after a grace period, reaps it
and removes the directory. Should the test process itself be killed, the kernel sends the server
SIGINT (PR_SET_PDEATHSIG on Linux), so no orphaned server is left listening.
"""
from __future__ import annotations

import ctypes
import glob
import os
import sys
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg import sql

from tests.support.servers import HOST, free_port

SUPERUSER = "postgres"


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL binaries on this machine."""


def find_bindir() -> Path | None:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version, reverse=True)
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(str(Path(on_path).parent))
    for directory in candidates:
        if (Path(directory) / "initdb").is_file() and (Path(directory) / "postgres").is_file():
            return Path(directory)
    return None


def _version(bindir: str) -> tuple[int, ...]:
    name = Path(bindir).parent.name
    return tuple(int(p) for p in name.split(".") if p.isdigit())


def _run_as() -> pwd.struct_passwd | None:
    """The unprivileged user to run the server as, or None to stay the current (non-root) user."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise PostgresUnavailable("running as root and there is neither a postgres nor a nobody user")


class PostgresServer:
    def __init__(self, process: subprocess.Popen, port: int, directory: Path, log: Path):
        self.process, self.port, self.directory, self.log = process, port, directory, log

    @property
    def pid(self) -> int:
        return self.process.pid

    @classmethod
    def start(cls, *, timeout: float = 30.0, attempts: int = 3) -> PostgresServer:
        bindir = find_bindir()
        if bindir is None:
            raise PostgresUnavailable("no initdb/postgres under /usr/lib/postgresql/*/bin or on PATH")
        user = _run_as()
        directory = Path(tempfile.mkdtemp(prefix="spine-cds-pg-"))
        try:
            if user is not None:
                os.chown(directory, user.pw_uid, user.pw_gid)
            as_user = _user_kwargs(user)
            data, log = directory / "data", directory / "server.log"
            subprocess.run([str(bindir / "initdb"), "-D", str(data), "-U", SUPERUSER, "--auth=trust",
                            "--encoding=UTF8", "--no-locale", "--no-sync"],
                           check=True, capture_output=True, env=_env(), **as_user)
            last_error: Exception | None = None
            for _ in range(attempts):  # the free port may be taken before postgres binds it
                port = free_port()
                with open(log, "ab") as out:
                    process = subprocess.Popen(
                        [str(bindir / "postgres"), "-D", str(data), "-k", str(directory), "-p", str(port),
                         "-h", HOST, "-F", "-c", "max_connections=50", "-c", "shared_buffers=16MB"],
                        stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=_env(),
                        start_new_session=True, preexec_fn=_die_with_parent(), **as_user)
                server = cls(process, port, directory, log)
                try:
                    server._wait_ready(timeout)
                    return server
                except RuntimeError as exc:
                    last_error = exc
                    server._terminate()
            raise last_error
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{SUPERUSER}@{HOST}:{self.port}/{database}"

    def connect(self, database: str = "postgres") -> psycopg.Connection:
        return psycopg.connect(host=HOST, port=self.port, user=SUPERUSER, dbname=database,
                               connect_timeout=2, autocommit=True)

    def create_database(self, name: str) -> str:
        """CREATE DATABASE name; its SQLAlchemy URL."""
        with self.connect() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"postgres exited with code {self.process.returncode}:\n{self.log_tail()}")
            try:
                with self.connect():
                    return
            except psycopg.OperationalError:
                time.sleep(0.1)
        raise RuntimeError(f"postgres did not accept connections within {timeout:g} s:\n{self.log_tail()}")

    def log_tail(self, limit: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-limit:]
        except OSError:
            return ""

    def _terminate(self, grace: float = 10.0) -> None:
        if self.process.poll() is None:
            try:
                os.kill(self.process.pid, signal.SIGINT)  # fast shutdown; SIGTERM would wait for clients
                self.process.wait(timeout=grace)
            except ProcessLookupError:
                self.process.wait()
            except subprocess.TimeoutExpired:
                # The group (start_new_session) holds the backends too: none may outlive the test run.
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def halt(self) -> None:
        """Stop the server (fast shutdown), keeping its data: `resume()` starts it again on the same port."""
        self._terminate()

    def resume(self, timeout: float = 30.0) -> None:
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(self.process.args, stdin=subprocess.DEVNULL, stdout=out,
                                            stderr=subprocess.STDOUT, env=_env(), start_new_session=True,
                                            preexec_fn=_die_with_parent(), **_user_kwargs(_run_as()))
        self._wait_ready(timeout)

    def stop(self) -> None:
        """Stop the server and remove its directory. Safe to call twice."""
        self._terminate()
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()


def _user_kwargs(user: pwd.struct_passwd | None) -> dict:
    if user is None:
        return {}
    # subprocess drops to the user itself (setgroups, setgid, setuid), like runuser would.
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": [], "cwd": "/"}


def _die_with_parent():
    """preexec_fn asking Linux to send SIGINT when the parent dies; None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up here: the forked child only calls it
    pr_set_pdeathsig = 1

    def preexec() -> None:
        prctl(pr_set_pdeathsig, int(signal.SIGINT))
    return preexec


def _env() -> dict[str, str]:
    # No PG* variables of the caller (PGDATA, PGPORT...) may steer the throwaway server.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    return {**env, "LC_ALL": "C", "LANG": "C"}


def signal_cluster(postmaster: int, signum: int) -> list[int]:
    """Signal the postmaster and every process it started (backends call setsid(): killpg misses them);
    SIGSTOP freezes the server (connections accepted, nothing answered), SIGCONT thaws it."""
    pids = [postmaster]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == postmaster:   # ppid
                pids.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    for pid in pids:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass
    return pids
