"""Command line: `spine-cds serve` / `python -m cds_service serve`, under gunicorn workers that read whole requests first;
`scenarios`, `synth` and `evaluate` for sandboxes without an EHR."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from criteria.spec import profile_ids

from .synthetic import SCENARIOS, SHAPES, synthesize


@click.group()
def main() -> None:
    """spine-cds: CDS Hooks medical-necessity checks for spine-surgery orders."""


@main.command()
@click.option("--host", default=lambda: os.environ.get("HOST", "127.0.0.1"), show_default="$HOST or 127.0.0.1")
@click.option("--port", type=int, default=lambda: int(os.environ.get("PORT", "8080")), show_default="$PORT or 8080")
@click.option("--workers", type=int, default=lambda: int(os.environ.get("WEB_CONCURRENCY", "2")), show_default="$WEB_CONCURRENCY or 2")
def serve(host: str, port: int, workers: int) -> None:
    """Serve the CDS Hooks endpoints with gunicorn (asyncio workers reading whole requests)."""
    from gunicorn.app.base import BaseApplication

    from .app import create_app
    from .buffering import BufferedWSGI
    from .config import ConfigError

    try:
        app = create_app()  # built before forking so configuration errors stop the start
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None  # one line naming the problem, not a traceback
    from .warmup import warm
    warm(app)   # rules loaded and frozen in the master: every worker starts warm (cds_service/warmup.py)

    class Server(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            # Slow clients must not starve honest EHRs: gunicorn's asyncio worker reads every request
            # while it costs only a coroutine, and buffering.BufferedWSGI hands the app whole bodies
            # (see the README, "Serving"). A sync worker would be held by a client trickling bytes.
            self.cfg.set("worker_class", "asgi")
            self.cfg.set("asgi_lifespan", "off")
            self.cfg.set("worker_connections", 1000)
            self.cfg.set("timeout", BODY_TIMEOUT)
            self.cfg.set("keepalive", 5)
            self.cfg.set("accesslog", "-")
            # gunicorn 25.1+ opens a control socket under $HOME/.gunicorn at start; a container's home
            # (/nonexistent) or a read-only root makes that an ERROR line at every start. Nothing here
            # uses gunicornc, so the socket is off.
            if "control_socket_disable" in self.cfg.settings:
                self.cfg.set("control_socket_disable", True)
            self.cfg.set("post_worker_init", worker_started)

        def load(self):
            return buffered

    _log_to_stderr()
    buffered = BufferedWSGI(app, max_body=app.config["CDS"]["MAX_BODY_BYTES"], body_timeout=BODY_TIMEOUT,
                            threads=APP_THREADS)
    click.echo(f"spine-cds listening on http://{host}:{port}/cds-services (CDS_AUTH={app.config['CDS']['AUTH']})")
    Server().run()


def worker_started(worker) -> None:
    """gunicorn's post_worker_init: the worker's threads hand over the interpreter lock more often, its
    event loop takes connections in turn with the other workers (balance_accepts), and it forks its
    reading partner (fhir_mappings.forked_reading) now, before any request's data is in its memory."""
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    balance_accepts(worker)
    import logging

    from fhir_mappings import forked_reading
    if not forked_reading.start_partner():
        logging.getLogger("spine_cds").warning("no reading partner could be forked: charts are read in one "
                                               "process, large ones forked per chart")


# Why: a worker's event loop reads requests and writes answers while its app threads compute, and each
# time it needs the interpreter lock it waited up to the 5 ms default for a computing thread to give it
# up, a few times per request. Measured with wrk at 4 connections on 2 workers, alternating runs:
# 200 resources p99 29.5-29.9 ms against 33.5-34.2; with notes p50 38-39 against 41, p99 55-57 against
# 60-65 ms, 2-3 % more answers a second. One connection: unchanged (nothing competes for the lock).
SWITCH_INTERVAL_S = 0.001


def balance_accepts(worker) -> None:
    """Each worker takes new connections one at a time, and one that already holds connections waits
    ACCEPT_PAUSE per connection before it takes the next: the workers share the connections.

    Why: all workers listen on one socket and asyncio accepts up to 100 waiting connections per
    wake-up, so when an EHR (or wrk) opens its keep-alive connections at once, the first worker to
    wake takes them all and the others idle for as long as those connections live. Measured with 4
    connections on 2 workers: 4:0 in three runs of four, half the throughput. The listen backlog is
    asyncio's own (unchanged); only how fast a worker takes from it changes."""
    loop = getattr(worker, "loop", None)
    accept = getattr(loop, "_accept_connection", None)
    if accept is None or not hasattr(loop, "_start_serving"):
        return      # not asyncio's selector loop (uvloop): its own accept policy

    def start_serving(protocol_factory, sock, sslcontext=None, server=None, backlog=100, *args, **kwargs):
        fd = sock.fileno()

        def ready():
            accept(protocol_factory, sock, sslcontext, server, 1, *args, **kwargs)
            held = getattr(worker, "nr_conns", 0) + 1      # the one just taken connects a moment later
            loop.remove_reader(fd)
            loop.call_later(min(ACCEPT_PAUSE * held, MAX_ACCEPT_PAUSE), resume)

        def resume():
            if sock.fileno() != -1 and (server is None or server.is_serving()):
                loop.add_reader(fd, ready)

        loop.add_reader(fd, ready)

    loop._start_serving = start_serving


ACCEPT_PAUSE = 0.001       # seconds per connection a worker holds before it takes another...
MAX_ACCEPT_PAUSE = 0.01    # ...at most: a worker holding many slow clients still takes new ones


def _log_to_stderr() -> None:
    """The service's own loggers (audit lines, FHIR fetch failures) at INFO on stderr, next to gunicorn's.

    gunicorn configures only its own loggers; without this, INFO lines of spine_cds.* and cds_service.*
    would go nowhere. Set up in the master, so every forked worker inherits it.
    """
    import logging

    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s",
                                           "%Y-%m-%d %H:%M:%S %z"))
    for name in ("spine_cds", "cds_service"):
        logger = logging.getLogger(name)
        if not logger.handlers:
            logger.addHandler(handler)
            logger.setLevel(logging.INFO)
            logger.propagate = False


BODY_TIMEOUT = 30   # seconds a client may take to send one request
APP_THREADS = 4     # per worker: the app runs only on whole requests, so few threads suffice
PROGRESS_FROM = 6   # files; fewer are written without a progress bar


@main.command()
def scenarios() -> None:
    """List the synthetic scenarios and the card topics each one gives."""
    for scenario in SCENARIOS.values():
        topics = ", ".join(sorted(scenario.expected_topics)) or "no cards"
        click.echo(f"{scenario.name}\n    {scenario.description}\n    expected: {topics}")


@main.command()
@click.argument("scenario", metavar="SCENARIO", type=click.Choice(["all", *SCENARIOS]))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for <scenario>-<n>.bundle.json and <scenario>-<n>.request.json.")
@click.option("--count", type=click.IntRange(min=1), default=1, show_default=True, help="Instances per scenario.")
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same files.")
@click.option("--shape", type=click.Choice(SHAPES), default="coded", show_default=True,
              help="coded: coded resources; ehr: as a hospital EHR sends the chart (US Core, notes, encounters); "
                   "payer: as a payer's server holds it (CARIN BB claims, Coverage, the imaging report).")
def synth(scenario: str, out_dir: Path, count: int, seed: int, shape: str) -> None:
    """Write synthetic FHIR transaction Bundles and matching order-sign requests (SCENARIO or all).

    The same seed gives the same patients and facts in every shape; payer requests need a service
    run with CDS_PAYER_DATA=on to read their claims."""
    chosen = list(SCENARIOS) if scenario == "all" else [scenario]
    suffix = "" if shape == "coded" else f".{shape}"
    files = ((out_dir / f"{s.scenario}-{s.index}{suffix}.{kind}.json", getattr(s, kind))
             for name in chosen for s in synthesize(name, count, seed, shape) for kind in ("bundle", "request"))
    total = 2 * count * len(chosen)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with click.progressbar(files, length=total, label="Writing", hidden=total < PROGRESS_FROM) as bar:
            for path, document in bar:
                path.write_text(json.dumps(document, indent=2) + "\n", "utf-8")
    except OSError as exc:
        raise click.ClickException(f"cannot write to {out_dir}: {exc}") from None
    click.echo(f"Wrote {total} files to {out_dir}")


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the service's answer as JSON.")
@click.option("--profile", type=click.Choice(profile_ids()), help="Payer profile of thresholds.")
def evaluate(file: Path, as_json: bool, profile: str | None) -> None:
    """Evaluate an order-sign request, or a FHIR Bundle of draft ServiceRequests and the chart, in-process."""
    # Imported here: the pipeline takes ~1 s to import, which `scenarios` and `synth` need not pay.
    from .config import ConfigError
    import sys

    from .evaluate import BadInput, evaluation, read_request, render

    try:
        result = evaluation(read_request(file), profile)
    except BadInput as exc:
        raise click.UsageError(str(exc)) from None   # exit 2: the input is wrong, not the service
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(result.answer, indent=2))
    else:
        click.echo(render(result, color=sys.stdout.isatty()), nl=False)


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["markdown", "html", "json"]), default="markdown", show_default=True)
@click.option("--profile", type=click.Choice(profile_ids()), help="Payer profile of thresholds.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write the letter to this file.")
def review(file: Path, fmt: str, profile: str | None, out: Path | None) -> None:
    """The review letter for an order-sign request or a FHIR Bundle: per order and CPT code, the
    determination, its reasons, the evidence, what would change it, the alternative and the sources."""
    from .config import ConfigError
    from .evaluate import BadInput, read_request, review_letter
    from .review import render as render_letter

    try:
        text, _ = render_letter(review_letter(read_request(file), profile), fmt)
    except BadInput as exc:
        raise click.UsageError(str(exc)) from None
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if out:
        try:
            out.write_text(text, "utf-8")
        except OSError as exc:
            raise click.ClickException(f"cannot write {out}: {exc}") from None
        click.echo(f"Wrote the review letter to {out}")
    else:
        click.echo(text, nl=False)
