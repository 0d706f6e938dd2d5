"""What every `kiportal` command module shares: the App, output, progress and the acting user.

A module of its own so that ui/cli.py and the command modules it adds with
``cli.add_command`` (ui/cli_admin.py, ui/cli_eval.py, ui/cli_policy.py, ui/loadtest.py)
import it, and never each other: no import circle, no half-initialised module.
"""
from __future__ import annotations

import getpass
import json
import sys

import click


def app_for(ctx: click.Context):
    """The App of this invocation, built lazily: `kiportal --help` must not touch the data directory."""
    obj = ctx.find_root().obj
    if "app" not in obj:
        from assistant.settings import load_settings
        from assistant.wiring import App

        obj["app"] = App(load_settings(obj["data_dir"]))
    return obj["app"]


def emit(data, as_json: bool, human) -> None:
    """One JSON object on stdout for scripts, or the human rendering."""
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False))
    else:
        human(data)


def progress_bar(enabled: bool):
    """A tqdm bar on stderr for long runs; returns (callback, close)."""
    if not enabled:
        return None, lambda: None
    from tqdm import tqdm

    bar = None

    def cb(done: int, total: int, name: str) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, unit="Dok", desc="Indexiere", file=sys.stderr, dynamic_ncols=True)
        bar.set_postfix_str(name[:40])
        bar.update(done - bar.n)

    return cb, lambda: bar.close() if bar else None


def shown(text: str) -> str:
    """Text from files (names, error details) made safe for a terminal: control characters, escape
    sequences and direction overrides are printed as escapes, so a file name cannot recolour the
    terminal, set its title or fake an extra output line."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in str(text))


def print_summary(s: dict) -> None:
    """An ingest/re-index summary in one line, then one line per failed file."""
    click.echo(
        f"hinzugefügt {s['added']}, aktualisiert {s['updated']}, unverändert {s['unchanged']}, "
        f"entfernt {s['removed']}, fehlgeschlagen {len(s['failed'])}; "
        f"{s['chunks']} Abschnitte in {s['seconds']:.1f} s ({s['chunks_per_s']:.1f} Abschnitte/s)"
    )
    for f in s["failed"]:
        click.echo(f"  ✗ {shown(f['source'])}: {shown(f['reason'])}")


YES = frozenset({"j", "ja", "y", "yes"})
MISMATCH = "Die beiden Eingaben stimmen nicht überein. / The two entries do not match."
ABORTED = "Abgebrochen. / Aborted."


def ask_password(confirm: bool = True) -> str:
    """A password typed at the terminal (hidden), asked twice with ``confirm``. click's own
    confirmation answers a mismatch in English ("Error: The two entered values do not match.")."""
    try:
        while True:
            first = click.prompt("Passwort", hide_input=True)
            if not confirm or click.prompt("Passwort wiederholen", hide_input=True) == first:
                return first
            click.echo(MISMATCH, err=True)
    except click.Abort:  # Ctrl-C or end of input: click would print "Aborted!"
        click.echo(ABORTED, err=True)
        raise SystemExit(1) from None


def ask_yes(question: str) -> None:
    """Ask before something that cannot be undone; anything but "j"/"ja" (or "y"/"yes") ends the
    command with exit code 1. click.confirm asks "[y/N]" and knows no "j"."""
    try:
        answer = click.prompt(f"{question} [j/N]", default="", show_default=False)
    except click.Abort:
        answer = ""
    if answer.strip().lower() not in YES:
        click.echo(ABORTED, err=True)
        raise SystemExit(1)


def cli_actor() -> str:
    """Who is acting, for the audit log: ``cli:<system user>``."""
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no passwd entry in some containers
        return "cli"
