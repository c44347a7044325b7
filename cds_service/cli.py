"""Command line: `spine-cds serve` / `python -m cds_service serve`, under gunicorn sync workers;
`scenarios`, `synth` and `evaluate` for sandboxes without an EHR."""
from __future__ import annotations

import json
import os
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
    """Serve the CDS Hooks endpoints with gunicorn (sync workers)."""
    from gunicorn.app.base import BaseApplication

    from .app import create_app
    from .config import ConfigError

    try:
        app = create_app()  # built before forking so configuration errors stop the start
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None  # one line naming the problem, not a traceback

    class Server(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", f"{host}:{port}")
            self.cfg.set("workers", workers)
            self.cfg.set("worker_class", "sync")
            self.cfg.set("timeout", 30)
            self.cfg.set("accesslog", "-")
            # gunicorn 25.1+ opens a control socket under $HOME/.gunicorn at start; a container's home
            # (/nonexistent) or a read-only root makes that an ERROR line at every start. Nothing here
            # uses gunicornc, so the socket is off.
            if "control_socket_disable" in self.cfg.settings:
                self.cfg.set("control_socket_disable", True)

        def load(self):
            return app

    click.echo(f"spine-cds listening on http://{host}:{port}/cds-services (CDS_AUTH={app.config['CDS']['AUTH']})")
    Server().run()


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
    from .evaluate import BadInput, evaluate as run, read_request, render

    try:
        answer = run(read_request(file), profile)
    except BadInput as exc:
        raise click.UsageError(str(exc)) from None   # exit 2: the input is wrong, not the service
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(json.dumps(answer, indent=2) if as_json else render(answer))
