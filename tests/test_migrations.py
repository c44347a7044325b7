"""Alembic migrations: head equals persistence.metadata, on SQLite and on PostgreSQL; upgrades are
idempotent, safe to start concurrently, adopt databases made before migrations, and ship in the wheel."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from cds_service import migrations
from cds_service.persistence import Store, metadata

ROOT = Path(__file__).resolve().parents[1]
MIGRATIONS = ROOT / "cds_service" / "migrations"


def schema_diffs(engine: sa.Engine, target: sa.MetaData = metadata) -> list:
    with engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn), target)


def versions(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all()


def head() -> str:
    return ScriptDirectory.from_config(migrations.alembic_config()).get_current_head()


def test_migrated_schema_equals_the_metadata(database_url):
    store = Store(database_url)
    try:
        assert schema_diffs(store.engine) == []
        assert versions(store.engine) == [head()]
    finally:
        store.dispose()


def test_the_comparison_notices_a_schema_the_migrations_do_not_make(database_url):
    # The test above could not fail if compare_metadata saw nothing: a column and an index
    # that no migration creates must show up.
    changed = sa.MetaData()
    for table in metadata.tables.values():
        table.to_metadata(changed)
    changed.tables["audit"].append_column(sa.Column("extra", sa.Integer, nullable=True))
    sa.Index("ix_feedback_card", changed.tables["feedback"].c.card_uuid)
    store = Store(database_url)
    try:
        kinds = sorted(diff[0] for diff in schema_diffs(store.engine, changed))
    finally:
        store.dispose()
    assert kinds == ["add_column", "add_index"]


def test_upgrade_at_head_changes_nothing(database_url):
    store = Store(database_url)
    store.add_feedback("svc", [{"card": "c", "outcome": "overridden", "outcomeTimestamp": "t"}])
    migrations.upgrade(store.engine)
    again = Store(database_url)
    try:
        assert versions(store.engine) == [head()]
        assert len(again.feedback_rows()) == 1
    finally:
        store.dispose()
        again.dispose()


# Each child opens the database, says "ready", and upgrades when it reads a line: all at once.
_STARTER = """
import sys
import sqlalchemy as sa
from cds_service import migrations
engine = sa.create_engine(sys.argv[1])
print("ready", flush=True)
sys.stdin.readline()
migrations.upgrade(engine)
"""


def test_concurrent_starts_on_an_empty_database_do_not_race(database_url):
    """Several processes starting at once (two replicas, two `serve` on one file) all come up."""
    children = [subprocess.Popen([sys.executable, "-c", _STARTER, database_url], cwd=ROOT, text=True,
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                for _ in range(4)]
    try:
        for child in children:
            assert child.stdout.readline().strip() == "ready", child.stderr.read()
        for child in children:
            child.stdin.write("go\n")
            child.stdin.flush()
        failures = []
        for child in children:
            _, err = child.communicate(timeout=60)
            if child.returncode != 0:
                failures.append(err[-1500:])
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.communicate()
    assert failures == []
    engine = sa.create_engine(database_url)
    try:
        assert versions(engine) == [head()]
        assert schema_diffs(engine) == []
    finally:
        engine.dispose()


def test_database_made_before_migrations_is_adopted(database_url):
    engine = sa.create_engine(database_url)
    metadata.tables["feedback"].create(engine)  # what Store's create_all made, before jwt_replay existed
    with engine.begin() as conn:
        conn.execute(metadata.tables["feedback"].insert().values(
            service_id="svc", card_uuid="old", outcome="accepted", outcome_timestamp="t", received_at=sa.func.now()))
    engine.dispose()
    store = Store(database_url)
    try:
        assert [r["card_uuid"] for r in store.feedback_rows()] == ["old"]
        assert versions(store.engine) == [head()]
        assert schema_diffs(store.engine) == []
    finally:
        store.dispose()


def test_one_linear_history_starting_at_0001():
    scripts = ScriptDirectory.from_config(migrations.alembic_config())
    assert scripts.get_heads() == [head()]
    assert [rev.revision for rev in scripts.walk_revisions()][-1] == "0001"
    assert Path(scripts.dir) == MIGRATIONS  # found through the package, not the working directory

