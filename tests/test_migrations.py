"""Alembic migrations: they build exactly the models' schema, on SQLite and PostgreSQL.

When a model changes and test_it_builds_exactly_the_tables_of_the_models fails, write the
next revision (see pingan/migrate.py):  python -m pingan.core.migrate revision -m "what changed"
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import io
import subprocess
import sys

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import main as alembic_main
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlmodel import Session, SQLModel

from models import Audit
from pingan.core import migrate
from pingan.core.settings import REPO_ROOT, get_settings, reset_settings

from pingan.core.clock import TZ as SHANGHAI  # noqa: E402


def _engine(url: str) -> sa.Engine:
    return sa.create_engine(migrate.normalise_url(url), poolclass=sa.pool.NullPool)


def _tables(url: str) -> set[str]:
    engine = _engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def _diffs(url: str) -> list:
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            return compare_metadata(context, SQLModel.metadata)
    finally:
        engine.dispose()


def _add_audit_row(url: str) -> int:
    engine = _engine(url)
    try:
        with Session(engine) as session:
            row = Audit(actor="system", action="remind", object_type="occurrence", object_id="1", detail={"step": "首次提醒"})
            session.add(row)
            session.commit()
            return row.id
    finally:
        engine.dispose()


def _assert_append_only(url: str, row_id: int) -> None:
    engine = _engine(url)
    try:
        statements = [
            sa.update(Audit).where(Audit.id == row_id).values(actor="someone else"),
            sa.delete(Audit).where(Audit.id == row_id),
            sa.delete(Audit),
        ]
        if engine.dialect.name == "postgresql":
            statements.append(sa.text("TRUNCATE audit"))
        for statement in statements:
            with engine.connect() as conn:
                with pytest.raises(sa.exc.IntegrityError, match="audit is append-only"):
                    conn.execute(statement)
                conn.rollback()
        with Session(engine) as session:
            row = session.get(Audit, row_id)
            assert (row.actor, row.detail) == ("system", {"step": "首次提醒"})
            assert row.at.tzinfo is not None
            # Appending still works.
            session.add(Audit(actor="system", action="escalate", object_type="occurrence", object_id="1"))
            session.commit()
            assert session.scalar(sa.select(sa.func.count()).select_from(Audit)) == 2
    finally:
        engine.dispose()


def _audit_guards(url: str) -> set[str]:
    """The triggers (and, on PostgreSQL, the function) that keep audit append-only."""
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                return set(conn.scalars(sa.text("SELECT name FROM sqlite_master WHERE type = 'trigger'")))
            triggers = set(conn.scalars(sa.text("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")))
            functions = set(conn.scalars(sa.text("SELECT proname FROM pg_proc WHERE proname = 'audit_append_only'")))
            return triggers | functions
    finally:
        engine.dispose()


GUARDS = {
    "sqlite": {"audit_no_update", "audit_no_delete"},
    "postgresql": {"audit_no_update_delete", "audit_no_truncate", "audit_append_only"},
}


def _dialect(url: str) -> str:
    return sa.make_url(migrate.normalise_url(url)).get_backend_name()


def test_it_builds_exactly_the_tables_of_the_models(db_url):
    migrate.upgrade("head", url=db_url)

    assert _tables(db_url) == set(SQLModel.metadata.tables) | {"alembic_version"}
    diffs = _diffs(db_url)
    assert diffs == [], (
        "the models and the migrations differ; write a revision with\n"
        '    python -m pingan.core.migrate revision -m "what changed"\n'
        f"differences: {diffs}"
    )
    assert migrate.current(db_url) == migrate.head()


def test_it_keeps_the_audit_table_append_only(db_url):
    migrate.upgrade("head", url=db_url)
    row_id = _add_audit_row(db_url)

    _assert_append_only(db_url, row_id)
    assert _audit_guards(db_url) >= GUARDS[_dialect(db_url)]


def test_it_downgrades_to_an_empty_database_and_upgrades_again(db_url):
    migrate.upgrade("head", url=db_url)
    migrate.downgrade("base", url=db_url)

    assert _tables(db_url) == {"alembic_version"}
    assert _audit_guards(db_url) == set()
    assert migrate.current(db_url) is None

    migrate.upgrade("head", url=db_url)
    assert _tables(db_url) == set(SQLModel.metadata.tables) | {"alembic_version"}
    assert _diffs(db_url) == []
    _assert_append_only(db_url, _add_audit_row(db_url))


def test_it_lets_concurrent_upgrades_converge(db_url):
    code = "import sys; from pingan.core.migrate import upgrade; upgrade(url=sys.argv[1])"
    procs = [
        subprocess.Popen([sys.executable, "-c", code, db_url], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(3)
    ]
    outputs = [proc.communicate(timeout=120)[0] for proc in procs]

    assert [proc.returncode for proc in procs] == [0, 0, 0], "\n".join(outputs)
    assert migrate.current(db_url) == migrate.head()
    assert _diffs(db_url) == []


def test_it_migrates_pingan_database_from_any_directory(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from pingan.cli import app

    home = tmp_path / "not" / "yet" / "there"
    monkeypatch.setenv("PINGAN_HOME", str(home))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    reset_settings()
    assert migrate.current() is None
    assert not home.exists(), "looking at the revision must not create the database"

    result = CliRunner().invoke(app, ["db", "upgrade"])

    assert result.exit_code == 0, result.output
    assert (home / "pingan.db").is_file()
    assert get_settings().db_url.endswith("pingan.db")
    assert migrate.current() == migrate.head()
    assert list(elsewhere.iterdir()) == []


def test_it_works_with_the_alembic_command_line(tmp_path, monkeypatch, sqlite_url):
    monkeypatch.chdir(tmp_path)
    ini = str(REPO_ROOT / "alembic.ini")

    alembic_main(["-c", ini, "-x", f"url={sqlite_url}", "upgrade", "head"])

    assert migrate.current(sqlite_url) == migrate.head()
    assert _diffs(sqlite_url) == []


def test_it_prints_the_postgresql_schema_offline():
    cfg = migrate.config("postgresql://pingan:s3cret@db.invalid/pingan")
    cfg.output_buffer = io.StringIO()

    command.upgrade(cfg, "head", sql=True)

    sql = cfg.output_buffer.getvalue()
    assert "CREATE TABLE audit" in sql
    assert "JSONB" in sql and "TIMESTAMP WITH TIME ZONE" in sql
    assert "CREATE TRIGGER audit_no_update_delete BEFORE UPDATE OR DELETE ON audit" in sql
    assert "s3cret" not in sql


FAILING_REVISION = """
import sqlalchemy as sa
from alembic import op

revision = "0001_boom"
down_revision = None


def upgrade():
    op.create_table("half_done", sa.Column("id", sa.Integer, primary_key=True))
    op.execute("INSERT INTO half_done (id) VALUES (1)")
    raise RuntimeError("boom")
"""


def test_it_rolls_back_a_failed_upgrade_entirely(tmp_path, db_url):
    versions = tmp_path / "versions"
    versions.mkdir()
    (versions / "0001_boom.py").write_text(FAILING_REVISION)
    cfg = migrate.config(db_url)
    cfg.set_main_option("version_locations", str(versions))

    with pytest.raises(RuntimeError, match="boom"):
        command.upgrade(cfg, "head")

    assert _tables(db_url) == set()


def test_it_keeps_one_linear_history_with_short_ids():
    script = ScriptDirectory.from_config(migrate.config())
    revisions = list(script.walk_revisions())

    assert len(script.get_heads()) == 1, "several heads: merge them (alembic merge heads)"
    assert revisions[-1].revision == "0001_initial"
    assert all(len(rev.revision) <= 32 for rev in revisions), "alembic_version holds 32 characters"


def test_it_renders_generated_revisions_that_import_and_run(tmp_path, sqlite_url):
    """Autogenerate the whole schema from scratch: the file imports and builds the models."""
    versions = tmp_path / "versions"
    versions.mkdir()
    cfg = migrate.config(sqlite_url)
    cfg.set_main_option("version_locations", str(versions))

    command.revision(cfg, message="everything", autogenerate=True, rev_id="0001_everything")

    path = versions / "0001_everything.py"
    source = path.read_text()
    assert "models.types.AwareDateTime()" in source
    assert "sa.JSON().with_variant(postgresql.JSONB(), 'postgresql')" in source
    assert "sqlmodel" not in source and "astext_type" not in source
    spec = importlib.util.spec_from_file_location("generated_revision", path)
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
    command.upgrade(cfg, "head")
    assert _diffs(sqlite_url) == []


def test_it_does_not_create_a_sqlite_file_to_read_its_revision(tmp_path):
    url = f"sqlite:///{tmp_path / 'absent' / 'pingan.db'}"

    assert migrate.current(url) is None
    assert not (tmp_path / "absent").exists()


def test_it_hides_passwords_in_urls():
    assert "s3cret" not in migrate.safe_url("postgresql+psycopg://pingan:s3cret@db/pingan")


def test_it_stores_aware_datetimes_through_the_migrated_schema(migrated_db):
    at = dt.datetime(2026, 3, 31, 23, 59, tzinfo=SHANGHAI)
    with Session(migrated_db) as session:
        session.add(Audit(at=at, actor="system", action="remind", object_type="occurrence", object_id="7"))
        session.commit()
    with Session(migrated_db) as session:
        row = session.scalars(sa.select(Audit)).one()
    assert row.at == at and row.at.utcoffset() == dt.timedelta(hours=8)
