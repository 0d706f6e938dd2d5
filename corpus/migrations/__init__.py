"""Alembic migrations of the catalog schema (one schema for SQLite and PostgreSQL).

Run programmatically by :func:`corpus.catalog.upgrade_schema` under the database's schema lock;
no ``alembic.ini`` is needed. A new revision is a file in ``versions/`` with the next number as
``revision`` and the newest one as ``down_revision`` (``script.py.mako`` is the template), written
with portable DDL through ``op``: TEXT, INTEGER/BIGINT, DOUBLE PRECISION mean the same on both.
"""
