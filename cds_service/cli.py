"""Command line: `spine-cds serve` / `python -m cds_service serve`, under gunicorn sync workers."""
from __future__ import annotations

import os

import click


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

        def load(self):
            return app

    click.echo(f"spine-cds listening on http://{host}:{port}/cds-services (CDS_AUTH={app.config['CDS']['AUTH']})")
    Server().run()
