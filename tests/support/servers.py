"""Start a server as a subprocess on 127.0.0.1, wait until it answers, stop it by PID.

    with ServerProcess.start(mini_fhir_command(bundle, token="t")) as srv:
        requests.get(srv.url + "/metadata")

`command` is a function of the port (a free one is picked) returning the argv, so the same helper
starts the mini FHIR server or the service itself (`python -m cds_service serve --port P`).
Stopping sends SIGTERM to the PID, then SIGKILL after a grace period, and always reaps the process.
Output goes to a temporary file whose tail is shown when the server fails to come up.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

HOST = "127.0.0.1"
MINI_FHIR_SERVER = Path(__file__).with_name("mini_fhir_server.py")
JWKS_SERVER = Path(__file__).with_name("jwks_server.py")


class ServerStartError(RuntimeError):
    pass


def free_port(host: str = HOST) -> int:
    """A port that was free a moment ago (the caller binds it soon after)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def mini_fhir_command(
    bundle: str | os.PathLike,
    *,
    token: str | None = None,
    page_size: int | None = None,
    delay_ms: int | None = None,
) -> Callable[[int], list[str]]:
    """argv builder for tests/support/mini_fhir_server.py, to pass to ServerProcess.start."""

    def command(port: int) -> list[str]:
        argv = [sys.executable, str(MINI_FHIR_SERVER), "--host", HOST, "--port", str(port), "--bundle", str(bundle)]
        if token is not None:
            argv += ["--token", token]
        if page_size is not None:
            argv += ["--page-size", str(page_size)]
        if delay_ms is not None:
            argv += ["--delay-ms", str(delay_ms)]
        return argv

    return command


def jwks_command(file: str | os.PathLike) -> Callable[[int], list[str]]:
    """argv builder for tests/support/jwks_server.py (start it with ready_path="/_stats")."""

    def command(port: int) -> list[str]:
        return [sys.executable, str(JWKS_SERVER), "--host", HOST, "--port", str(port), "--file", str(file)]

    return command


class ServerProcess:
    """A server subprocess listening on http://127.0.0.1:port. Use as a context manager."""

    def __init__(self, process: subprocess.Popen, port: int, output):
        self.process = process
        self.port = port
        self.url = f"http://{HOST}:{port}"
        self._output = output

    @property
    def pid(self) -> int:
        return self.process.pid

    @classmethod
    def start(
        cls,
        command: Callable[[int], Sequence[str]],
        *,
        ready_path: str = "/metadata",
        timeout: float = 15.0,
        env: dict[str, str] | None = None,
        attempts: int = 3,
        cwd: str | os.PathLike | None = None,
    ) -> ServerProcess:
        """Start `command(port)` on a free port and wait until GET `ready_path` answers (any status).

        If the process exits before answering (e.g. the port was taken in between), it is tried
        again on another port, up to `attempts` times.
        """
        last_error = None
        for _ in range(attempts):
            port = free_port()
            output = tempfile.TemporaryFile()
            process = subprocess.Popen(
                list(command(port)),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=cwd,
                start_new_session=True,  # a Ctrl-C in the terminal is for pytest, not for the server
            )
            server = cls(process, port, output)
            try:
                server._wait_ready(ready_path, timeout)
                return server
            except ServerStartError as exc:
                last_error = exc
                exited = process.poll() is not None
                server.stop()
                if not exited:  # it runs but never answered: another port will not help
                    break
        raise last_error

    def _wait_ready(self, path: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerStartError(
                    f"server exited with code {self.process.returncode} before answering:\n{self.output_tail()}"
                )
            try:
                with urllib.request.urlopen(self.url + path, timeout=1.0):
                    return
            except urllib.error.HTTPError as exc:  # it answers, even if not 2xx
                exc.close()
                return
            except (urllib.error.URLError, OSError):
                time.sleep(0.05)
        raise ServerStartError(f"server did not answer {self.url}{path} within {timeout:g} s:\n{self.output_tail()}")

    def output_tail(self, limit: int = 4000) -> str:
        if self._output.closed:
            return ""
        self._output.flush()
        self._output.seek(0)
        return self._output.read().decode(errors="replace")[-limit:]

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM the PID, SIGKILL it after `grace` seconds, and reap it. Safe to call twice."""
        if self.process.poll() is None:
            try:
                os.kill(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()
            except ProcessLookupError:
                self.process.wait()
        if not self._output.closed:
            self._output.close()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()
