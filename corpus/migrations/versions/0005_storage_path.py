"""Documents remember where their file lies inside the storage folder (``storage_path``, relative,
'' for files elsewhere), so a replica that mounts a shared storage folder at another place than the
replica that stored the file still finds it (download, replacement, re-index).

Revision ID: 0005
Revises: 0004
"""
from alembic import op
import sqlalchemy as sa

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("documents", sa.Column("storage_path", sa.Text, nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("documents") as batch:
        batch.drop_column("storage_path")
