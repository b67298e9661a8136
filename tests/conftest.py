"""Fixtures every pingan test can use.

Isolation, for every test (autouse):

``pingan_home``
    ``PINGAN_HOME`` is a fresh folder under the test's ``tmp_path`` (it exists, empty),
    ``PINGAN_DEMO=1``, ``PINGAN_DIGEST_MORNING`` empty (notices go at once, not at 09:00), every other ``PINGAN_*`` variable of the caller's environment is
    removed (``PINGAN_TEST_*`` excepted) and a ``.env`` file in the working directory is
    ignored, so a developer's real database or notification channels are never touched.
    Settings and engines are reset before and after the test. Returns the home folder.
    A test that needs another setting does ``monkeypatch.setenv("PINGAN_…", …)`` and then
    ``pingan.core.settings.reset_settings()``.

Databases (each yields a URL string; nothing is migrated unless the fixture says so):

``sqlite_url``
    ``sqlite:///<tmp_path>/pingan.db``; the file does not exist yet.
``pg_url``
    A fresh, empty PostgreSQL database ``pingan_test_<random>`` on the server of
    ``PINGAN_TEST_POSTGRES_URL``, dropped after the test (open connections are closed
    first). Skipped, with the reason shown in pytest's summary, when the variable is not
    set; an error when it is set and the server cannot be used. Tests that use it get the
    ``postgres`` marker automatically (``-m "not postgres"`` deselects them).
``pg_databases``
    ``make()`` returns the URL of another fresh PostgreSQL database, as many as the test
    needs (pingan's and Prefect's, say); all dropped after the test.
``db_url``
    Parametrised: the test runs once with ``sqlite_url`` (id ``sqlite``) and once with
    ``pg_url`` (id ``postgresql``). To run a test on SQLite only, use ``sqlite_url``, or
    ``@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)``.
``prefect_harness``
    One Prefect test server for the whole session in each test process (``./scripts/test``
    runs two, with pytest-xdist); it takes 20–40 s to start. Flows called
    in a test that asks for it run against that server. Tests using it get the ``prefect``
    marker (``-m "not prefect"`` deselects them).
``migrated_db``
    ``db_url`` at the head revision (a copy of a database migrated once per session:
    ``migrated_template``) and made pingan's database
    (``PINGAN_DATABASE_URL``); returns ``pingan.core.db.get_engine()``, so code under test that
    calls ``get_engine()`` or ``session_scope()`` uses it.
``ids``
    The small named organisation of ``tests/factories.py`` in ``migrated_db``: ids by code.
``sent``
    ``pingan.delivery.transports.deliver`` replaced by a ``factories.Recorder`` for the test
    (every send succeeds and is recorded; nothing leaves the machine).
``sink``
    A loopback HTTP sink (``factories.Sink``) running for the test.

Do not define tables on ``SQLModel.metadata`` in tests: test_migrations checks that the
migrations build exactly the tables of that metadata.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from pingan.core.db import dispose_engines, get_engine
from pingan.core.migrate import normalise_url, safe_url, upgrade
from pingan.duties.runtime import reset_runtime
from pingan.core.settings import Settings, reset_settings

PG_ENV = "PINGAN_TEST_POSTGRES_URL"
PG_SKIP_REASON = f"{PG_ENV} not set: PostgreSQL tests skipped"
PG_DATABASE_PREFIX = "pingan_test_"


def pytest_report_header(config) -> str:
    url = os.environ.get(PG_ENV)
    return f"PostgreSQL tests: {'on ' + safe_url(url) if url else f'skipped ({PG_ENV} not set)'}"


def pytest_collection_modifyitems(config, items) -> None:
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if {"pg_url", "pg_databases"} & names:
            item.add_marker(pytest.mark.postgres)
        if "prefect_harness" in names:
            item.add_marker(pytest.mark.prefect)


@pytest.fixture(autouse=True)
def pingan_home(tmp_path, monkeypatch) -> Iterator:
    for name in list(os.environ):
        if name.startswith("PINGAN_") and not name.startswith("PINGAN_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.setitem(Settings.model_config, "env_file", None)
    home = tmp_path / "pingan-home"
    home.mkdir()
    monkeypatch.setenv("PINGAN_HOME", str(home))
    monkeypatch.setenv("PINGAN_DEMO", "1")
    # Notices are released at once unless a test sets the digest slots (tests/test_delivery.py does).
    monkeypatch.setenv("PINGAN_DIGEST_MORNING", "")
    reset_settings()
    reset_runtime()
    dispose_engines()
    yield home
    reset_settings()
    reset_runtime()
    dispose_engines()


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'pingan.db'}"


def _admin_engine(server_url: str) -> sa.Engine:
    """AUTOCOMMIT connections for CREATE/DROP DATABASE, on the database the URL names."""
    return sa.create_engine(server_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)


@pytest.fixture(scope="session")
def pg_server_url() -> str:
    """``PINGAN_TEST_POSTGRES_URL``, checked once per session; skips when unset."""
    url = os.environ.get(PG_ENV)
    if not url:
        pytest.skip(PG_SKIP_REASON)
    url = normalise_url(url)
    engine = _admin_engine(url)
    problem = None
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except sa.exc.SQLAlchemyError as exc:
        problem = exc.orig or exc
    finally:
        engine.dispose()
    if problem is not None:
        pytest.fail(f"{PG_ENV}={safe_url(url)} is set but PostgreSQL cannot be reached: {problem}", pytrace=False)
    return url


def _drop_database(engine: sa.Engine, name: str) -> None:
    with engine.connect() as conn:
        try:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except sa.exc.ProgrammingError:  # PostgreSQL < 13 has no FORCE
            conn.exec_driver_sql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %(name)s", {"name": name}
            )
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')


@pytest.fixture
def pg_databases(pg_server_url) -> Iterator:
    """``make()`` → the URL of a fresh, empty PostgreSQL database; all are dropped after the test."""
    admin = _admin_engine(pg_server_url)
    made: list[str] = []

    def make() -> str:
        name = f"{PG_DATABASE_PREFIX}{uuid.uuid4().hex[:12]}"
        problem = None
        try:
            with admin.connect() as conn:
                # template0: no clash with sessions open on template1; UTF8 for Chinese text.
                conn.exec_driver_sql(f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8'")
        except sa.exc.SQLAlchemyError as exc:
            problem = exc.orig or exc
        if problem is not None:
            pytest.fail(f"cannot create a test database on {safe_url(pg_server_url)}: {problem}", pytrace=False)
        made.append(name)
        return sa.make_url(pg_server_url).set(database=name).render_as_string(hide_password=False)

    try:
        yield make
    finally:
        dispose_engines()  # pooled connections of the code under test would block the drop
        for name in made:
            _drop_database(admin, name)
        admin.dispose()


@pytest.fixture
def pg_url(pg_databases) -> str:
    return pg_databases()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request) -> str:
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory, request) -> Iterator:
    """``copy(url)``: make the empty database at ``url`` a copy of one migrated once per session.

    Migrating takes about a second on SQLite (its ALTERs rebuild tables) and half a second on
    PostgreSQL; a copy takes a few milliseconds. The copy is the migrations' own result:
    tests/test_migrations.py runs the migrations themselves, from an empty database, every time.
    """
    templates: dict[str, str] = {}  # "sqlite" → file path, "postgresql" → database name, "server" → its URL

    def copy(url: str) -> None:
        import shutil

        if url.startswith("sqlite"):
            if "sqlite" not in templates:
                path = tmp_path_factory.mktemp("migrated") / "template.db"
                upgrade("head", url=f"sqlite:///{path}")
                dispose_engines()
                templates["sqlite"] = str(path)
            shutil.copyfile(templates["sqlite"], sa.make_url(url).database)
            return
        server = templates.setdefault("server", request.getfixturevalue("pg_server_url"))
        admin = _admin_engine(server)
        try:
            if "postgresql" not in templates:
                name = f"{PG_DATABASE_PREFIX}template_{uuid.uuid4().hex[:8]}"
                with admin.connect() as conn:
                    conn.exec_driver_sql(f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8'")
                templates["postgresql"] = name
                upgrade("head", url=sa.make_url(server).set(database=name).render_as_string(hide_password=False))
                dispose_engines()  # a template may have no open connection
            target = sa.make_url(url).database
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE "{target}"')
                conn.exec_driver_sql(f'CREATE DATABASE "{target}" TEMPLATE "{templates["postgresql"]}"')
        finally:
            admin.dispose()

    yield copy
    if "postgresql" in templates:
        admin = _admin_engine(templates["server"])
        try:
            _drop_database(admin, templates["postgresql"])
        finally:
            admin.dispose()


@pytest.fixture
def migrated_db(db_url, migrated_template, monkeypatch) -> Iterator[sa.Engine]:
    migrated_template(db_url)
    monkeypatch.setenv("PINGAN_DATABASE_URL", db_url)
    reset_settings()
    dispose_engines()
    yield get_engine()
    dispose_engines()


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture
def ids(migrated_db) -> dict[str, int]:
    from pingan.core.db import session_scope
    from factories import make_org

    with session_scope() as session:
        return make_org(session)


@pytest.fixture
def sent(monkeypatch):
    from pingan.delivery import transports
    from factories import Recorder

    recorder = Recorder()
    monkeypatch.setattr(transports, "deliver", recorder)
    return recorder


@pytest.fixture
def sink():
    from factories import running_sink

    with running_sink() as server:
        yield server
