"""Portal replicas of one cluster in this process: own data directories, one app database (a
database on the session's PostgreSQL), one ``auth.secret``, password login; each served by a
uvicorn server of its own on a free port (what ``kiportal serve`` runs, see ``ui.portal.background_portal``).

Each replica has its own App, so everything the replicas share goes through the app database, as
between machines; tests/cluster/ runs replicas as processes of their own. Shared by the replica
tests of tests/ui and the cross-replica attacks of tests/security.

(A module of its own, not conftest.py: two conftest modules make ``from conftest import`` ambiguous.)
"""
from __future__ import annotations

from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Iterator

SECRET = "r" * 64  # the same auth.secret on every replica: one login cookie name, one link signature


def replica_contexts(root: Path, app_factory, app_db_url: str, names: tuple[str, ...] = ("a", "b"),
                     *, auth: dict | None = None, **overrides) -> dict:
    """A PortalContext per name, data in ``root / name``, all on ``app_db_url``; ``auth`` adds to
    password login with the shared secret, ``overrides`` are further settings."""
    from ui.context import PortalContext

    auth = {"mode": "password", "secret": SECRET, **(auth or {})}
    return {name: PortalContext(app_factory(root / name, app_db_url=app_db_url, auth=auth, **overrides))
            for name in names}


@contextmanager
def serving(ctxs: dict) -> Iterator[dict]:
    """Every replica in its own server for as long as the block runs: name -> ``(url, server)``."""
    from ui.portal import background_portal

    with ExitStack() as stack:
        yield {name: stack.enter_context(background_portal(ctx)) for name, ctx in ctxs.items()}
