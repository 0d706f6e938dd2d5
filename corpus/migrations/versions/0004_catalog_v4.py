"""The catalog as schema version 4 (the last version before Alembic): documents, chunks,
collections with classification and readers, OCR page confidences, and the meta table with the
generation counter.

A ``catalog.sqlite3`` written before Alembic already has these tables; it is brought to version 4
by the old in-place steps and then stamped with this revision (:func:`corpus.catalog.upgrade_schema`),
so its data stays as it is. Times are DOUBLE PRECISION (epoch seconds: PostgreSQL's REAL would
round them to minutes), ids and JSON are TEXT.

Revision ID: 0004
Revises:
"""
from alembic import op
import sqlalchemy as sa

revision = "0004"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "meta",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "collections",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("classification", sa.Text, nullable=False, server_default="intern"),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("readers", sa.Text, nullable=False, server_default='["alle"]'),
    )
    op.create_table(
        "documents",
        sa.Column("doc_id", sa.Text, primary_key=True),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("path", sa.Text, nullable=False, unique=True),
        sa.Column("original_name", sa.Text, nullable=False, server_default=""),
        sa.Column("sha256", sa.Text, nullable=False, server_default=""),
        sa.Column("size", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("format", sa.Text, nullable=False, server_default=""),
        sa.Column("title", sa.Text, nullable=False, server_default=""),
        sa.Column("pages", sa.Integer),
        sa.Column("page_kind", sa.Text),
        sa.Column("collection", sa.Text, nullable=False),
        sa.Column("classification", sa.Text),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("error", sa.Text, nullable=False, server_default=""),
        sa.Column("indexed_at", sa.Double),
        sa.Column("chunk_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("meta", sa.Text, nullable=False, server_default="{}"),
    )
    op.create_index("documents_collection", "documents", ["collection"])
    op.create_table(
        "chunks",
        sa.Column("chunk_id", sa.Text, primary_key=True),
        sa.Column("doc_id", sa.Text, sa.ForeignKey("documents.doc_id", ondelete="CASCADE"), nullable=False),
        sa.Column("ordinal", sa.Integer, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("page", sa.Integer),
        sa.Column("section", sa.Text),
        sa.Column("content_hash", sa.Text, nullable=False),
    )
    op.create_index("chunks_doc", "chunks", ["doc_id", "ordinal"])
    op.create_table(
        "ocr_pages",
        sa.Column("doc_id", sa.Text, sa.ForeignKey("documents.doc_id", ondelete="CASCADE"), nullable=False),
        sa.Column("page", sa.Integer, nullable=False),
        sa.Column("confidence", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("doc_id", "page"),
    )
    op.bulk_insert(sa.table("meta", sa.column("key", sa.Text), sa.column("value", sa.Text)),
                   [{"key": "schema_version", "value": "4"}, {"key": "generation", "value": "0"}])


def downgrade() -> None:
    for table in ("ocr_pages", "chunks", "documents", "collections", "meta"):
        op.drop_table(table)
