"""What a removed account leaves behind is removed with it (assistant.user_data): its chats and tool
runs, and its training sessions go to a name no account can have; other users' data stays."""
from __future__ import annotations

from assistant.appdb import AppDB
from assistant.chats import ChatStore
from assistant.tools.history import ToolRunStore
from assistant.tools.result import ToolResult
from assistant.training.plans import BUNDLED_DIR, load_plan
from assistant.training.sessions import TrainingStore, may_run_session
from assistant.user_data import forget_user
from assistant.users import valid_user_name


def test_forget_user_removes_the_workspace_and_releases_the_sessions(tmp_path):
    db = AppDB(f"sqlite:///{tmp_path / 'app.sqlite3'}")
    chats, runs, training = ChatStore(db), ToolRunStore(db), TrainingStore(db, secret="geheim")
    for user in ("petra", "bob"):
        chat = chats.create_chat(user, "Homeoffice")
        chats.add_message(user, chat, "user", "Wie hoch ist der Zuschlag?")
        chats.create_chat(user, "Zweiter Chat")
        runs.save(user, ToolResult(tool="einfach", output="Text"))
    plan = load_plan(BUNDLED_DIR / "ki-kompass-starter.yaml")
    running, done = training.start(plan, "petra"), training.start(plan, "petra")
    training.end(done.id)
    bobs = training.start(plan, "bob")

    assert forget_user(db, "petra") == {"chats": 2, "tool_runs": 1, "training_sessions": 2}
    assert chats.list_chats("petra") == [] and runs.list_runs("petra") == []
    assert db.query("SELECT COUNT(*) AS n FROM messages WHERE chat_id NOT IN (SELECT id FROM chats)")[0]["n"] == 0
    assert len(chats.list_chats("bob")) == 2 and len(runs.list_runs("bob")) == 1
    for sid in (running.id, done.id):
        s = training.get(sid)
        assert not s.active and not valid_user_name(s.trainer) and not may_run_session("trainer", "petra", s.trainer)
        assert may_run_session("admin", "adam", s.trainer)  # admins still reach them
    assert training.get(bobs.id).active and training.get(bobs.id).trainer == "bob"
    assert forget_user(db, "petra") == {"chats": 0, "tool_runs": 0, "training_sessions": 0}


def test_the_user_store_removes_and_clears_what_an_account_leaves(tmp_path):
    """Every way to remove or create an account (portal, CLI) goes through the store, so it is done there."""
    from assistant.users import UserStore

    db = AppDB(f"sqlite:///{tmp_path / 'app.sqlite3'}")
    users, chats, runs = UserStore(db), ChatStore(db), ToolRunStore(db)
    users.add("petra", "Passwort-1234")
    chats.create_chat("petra", "Homeoffice")
    assert users.remove("petra") == {"chats": 1, "tool_runs": 0, "training_sessions": 0}
    runs.save("petra", ToolResult(tool="einfach", output="spät gespeichert"))  # a run that ended after the removal
    users.add("petra", "Passwort-5678")
    assert runs.list_runs("petra") == [] and chats.list_chats("petra") == []
