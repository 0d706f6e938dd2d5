"""What an account leaves behind, removed with it.

Why: chats, tool runs and training sessions belong to a user *name*. When an admin removed an
account and later created one with the same name (a new colleague, or the same person moved to
another department), the new account opened the old one's chats, with answers from a department
it may not read (found by an attacker's probe). So removing an account removes its private
workspace (chats and tool runs, which only their owner could ever open) and hands its training
sessions to a name no account can have. Feedback (read by admins) and the audit log stay.
"""
from __future__ import annotations

from assistant.appdb import AppDB


def forget_user(db: AppDB, name: str) -> dict[str, int]:
    """Remove ``name``'s chats and tool runs and release their training sessions; the counts, for the audit."""
    from assistant.chats import ChatStore
    from assistant.tools.history import ToolRunStore
    from assistant.training.sessions import TrainingStore

    return {"chats": ChatStore(db).delete_all_chats(name), "tool_runs": ToolRunStore(db).delete_all(name),
            "training_sessions": TrainingStore(db).release_trainer(name)}
