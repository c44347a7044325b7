"""Alembic environment of the service's database.

Normally run by `cds_service.migrations.upgrade`, which hands over an open connection (inside the
transaction that holds the migration lock). Run by the alembic command line instead, it migrates
`sqlalchemy.url` when the ini file sets one, else the service's own CDS_DATABASE_URL.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from cds_service import config as service_config
from cds_service.persistence import metadata  # what autogenerate and compare_metadata compare against


def _url() -> str:
    return context.config.get_main_option("sqlalchemy.url") or service_config.load()["DATABASE_URL"]


def _migrate(connection: sa.Connection) -> None:
    # Batch mode on SQLite: it cannot ALTER most things in place, Alembic rebuilds the table instead.
    context.configure(connection=connection, target_metadata=metadata,
                      render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _migrate(connection)
        return
    engine = sa.create_engine(_url())
    try:
        with engine.begin() as connection:
            _migrate(connection)
    finally:
        engine.dispose()


def run_offline() -> None:
    """`alembic upgrade --sql`: print the DDL for a DBA instead of running it."""
    context.configure(url=_url(), target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
