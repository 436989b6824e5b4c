"""Alembic environment, run by ``flask db upgrade`` (Flask-Migrate) inside the application.

The database is shared with the other Telegive services, so: the version table is our own
(``participant_alembic_version``), and autogenerate only ever looks at this service's tables.
"""

from __future__ import annotations

import logging

from alembic import context
from flask import current_app

log = logging.getLogger("alembic.env")
migrate_extension = current_app.extensions["migrate"]
metadata = migrate_extension.db.metadata
OUR_TABLES = set(metadata.tables)


def include_object(obj, name, type_, reflected, compare_to):
    """Never touch (or propose dropping) another service's tables."""
    if type_ == "table":
        return name in OUR_TABLES
    table = getattr(obj, "table", None)
    return table is None or table.name in OUR_TABLES


def skip_empty_autogenerate(ctx, revision, directives):
    if (
        getattr(context.config.cmd_opts, "autogenerate", False)
        and directives[0].upgrade_ops.is_empty()
    ):
        directives[:] = []
        log.info("No changes in schema detected.")


def configure_args() -> dict:
    args = dict(migrate_extension.configure_args)
    args.setdefault("include_object", include_object)
    args.setdefault("process_revision_directives", skip_empty_autogenerate)
    return args


def run_offline() -> None:
    url = migrate_extension.db.engine.url.render_as_string(hide_password=False)
    context.configure(url=url, target_metadata=metadata, literal_binds=True, **configure_args())
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    with migrate_extension.db.engine.connect() as connection:
        context.configure(connection=connection, target_metadata=metadata, **configure_args())
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
