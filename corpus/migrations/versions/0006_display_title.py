"""Documents keep the title people read beside the indexed one (``display_title``, '' = the title):
a PDF whose first line is a label ("Herausgeber:") is shown by its cover's headline, while its
passages stay indexed with the first line (ingest.loaders.pdf_title). Documents catalogued before
get '' and show their title as before until they are read again.

Revision ID: 0006
Revises: 0005
"""
from alembic import op
import sqlalchemy as sa

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("documents", sa.Column("display_title", sa.Text, nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("documents") as batch:
        batch.drop_column("display_title")
