"""Alembic environment of the catalog: always called with an open connection (no URL, no ini).

:func:`corpus.catalog.upgrade_schema` passes the connection (in a transaction, under the
schema lock) as ``config.attributes["connection"]`` and the version table's name as
``config.attributes["version_table"]``.
"""
from alembic import context

config = context.config
connection = config.attributes["connection"]
context.configure(connection=connection, target_metadata=None,
                  version_table=config.attributes.get("version_table", "catalog_alembic_version"))
with context.begin_transaction():
    context.run_migrations()
