"""The schema is owned by the Alembic migrations, in a database shared with other services."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import create_engine, inspect, text

from app import MIGRATIONS_DIR, create_app
from extensions import VERSION_TABLE, db
from models import Base
from tests.conftest import test_env


def test_the_migrated_schema_matches_the_models(app):
    with app.app_context(), db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        ours = [diff for diff in compare_metadata(context, Base.metadata) if _is_ours(diff)]
    assert ours == []


def _is_ours(diff) -> bool:
    """Whether an autogenerate difference concerns one of our tables (the database is shared)."""
    if isinstance(diff, list):  # modify_* differences come as a list of tuples
        return any(_is_ours(part) for part in diff)
    kind = diff[0]
    if kind in ("add_table", "remove_table"):
        table = diff[1].name
    elif kind in ("add_index", "remove_index", "add_constraint", "remove_constraint"):
        table = diff[1].table.name
    else:  # add_column, remove_column, modify_*: (kind, schema, table, ...)
        table = diff[2]
    return table.startswith("participant")


def test_a_schema_drift_would_be_noticed(app):
    """The comparison above is not blind: a column the migrations lack is reported."""
    from sqlalchemy import Column, Integer, MetaData, Table

    drifted = MetaData()
    for table in Base.metadata.tables.values():
        table.to_metadata(drifted)
    drifted.tables["participant_entries"].append_column(Column("rogue", Integer))
    Table("participant_extra", drifted, Column("id", Integer, primary_key=True))
    with app.app_context(), db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        found = [diff for diff in compare_metadata(context, drifted) if _is_ours(diff)]
    kinds = {(diff[0], diff[2] if diff[0] == "add_column" else diff[1].name) for diff in found}
    assert ("add_column", "participant_entries") in kinds
    assert ("add_table", "participant_extra") in kinds


def test_our_version_table_is_our_own(app):
    with app.app_context():
        tables = set(inspect(db.engine).get_table_names())
    assert VERSION_TABLE in tables
    assert "alembic_version" not in tables
    assert all(name.startswith("participant_") for name in tables)


def test_upgrade_and_downgrade_leave_other_services_tables_alone(tmp_path):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE giveaways (id INTEGER PRIMARY KEY)"))
        connection.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32))"))
        connection.execute(text("INSERT INTO alembic_version VALUES ('theirs')"))
    app = create_app(test_env(url))
    with app.app_context():
        upgrade(directory=str(MIGRATIONS_DIR))
        assert "participant_entries" in inspect(db.engine).get_table_names()
        downgrade(directory=str(MIGRATIONS_DIR), revision="base")
        remaining = set(inspect(db.engine).get_table_names())
        upgrade(directory=str(MIGRATIONS_DIR))
        db.engine.dispose()
    assert {"giveaways", "alembic_version"} <= remaining
    assert not any(name.startswith("participant_entries") for name in remaining)
    with engine.connect() as connection:
        assert (
            connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == "theirs"
        )
    engine.dispose()
