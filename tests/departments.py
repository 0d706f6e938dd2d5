"""The departments of the red-team, browser and SSO tests (tests/ui, tests/security): two departments
with a collection each (a code word in every document), one collection for all, their users, and
the leak markers that must never reach someone outside a department. One module both suites import
(``from conftest import`` is ambiguous when both run in one session)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEPT_PASSWORD = "Abteilung-Test-2025!"
DEPT_USERS = {  # name: (role, groups)
    "petra": ("staff", ["personalamt"]), "bob": ("staff", ["bauamt"]), "nora": ("staff", []),
    "tilo": ("trainer", ["personalamt"]), "tom": ("trainer", ["bauamt"]), "adam": ("admin", []),
}
DEPT_DOCS = {  # collection: (readers, file name, text)
    "personalakten": (["personalamt"], "dienstvereinbarung-homeoffice.txt",
                      "Dienstvereinbarung Homeoffice im Personalamt\n\n"
                      "Der Zuschlag für Homeoffice beträgt 47 Euro im Monat und wird mit dem Gehalt gezahlt. "
                      "Das Kennwort der Dienstvereinbarung lautet Kranichfeder.\n"),
    "bauakten": (["bauamt"], "gebuehrenliste-bauamt.txt",
                 "Gebührenliste des Bauamts für Anträge\n\n"
                 "Die Gebühr für eine Bauvoranfrage beträgt 312 Euro und ist vorab zu überweisen. "
                 "Das Kennwort der Gebührenliste lautet Maulwurfhuegel.\n"),
    "allgemein": (["alle"], "kantine-rathaus.txt",
                  "Kantine im Rathaus\n\nDie Kantine im Rathaus öffnet werktags um 11:30 Uhr. "
                  "Das Mittagessen kostet für Beschäftigte 4 Euro.\n"),
}
DEPT_QUESTIONS = {"bauakten": "Wie hoch ist die Gebühr für eine Bauvoranfrage?",
                  "personalakten": "Wie hoch ist der Zuschlag für Homeoffice?"}


@dataclass
class DeptPortal:
    url: str
    ctx: object
    server: object

    def markers(self, collection: str) -> list[str]:
        """Strings that must never reach someone who may not read ``collection``: document id, file
        name, title, the code word and overlapping 25-character pieces of every passage."""
        cat = self.ctx.app.catalog
        out: list[str] = []
        for rec in cat.documents(collection=collection):
            out += [rec.doc_id, Path(rec.source).name, Path(rec.source).stem, rec.title]
            for chunk in cat.iter_chunks(rec.doc_id):
                text = " ".join(chunk.text.split())
                out += [text[i:i + 25] for i in range(0, max(1, len(text) - 24), 30)]
        out += {"bauakten": ["Maulwurfhuegel", "312 Euro"], "personalakten": ["Kranichfeder", "47 Euro"]}.get(
            collection, [])
        return [m for m in dict.fromkeys(out) if m]

    def leaks(self, collection: str, data, typed: str = "") -> list[str]:
        """Markers of ``collection`` in ``data`` (HTML entities and Markdown escapes undone), except
        those the user typed in ``typed`` themselves."""
        import html

        text = html.unescape(str(data)).replace("\\", "")
        return [m for m in self.markers(collection) if m in text and m not in typed]

    def sign(self, doc_id: str, user: str) -> str:
        return self.server.handlers.signer.sign(doc_id, user)

    def doc_of(self, collection: str):
        return self.ctx.app.catalog.documents(collection=collection)[0]


def add_department_docs(app, folder: Path) -> None:
    """Each collection of ``DEPT_DOCS`` with its readers and its one document, indexed in ``app``."""
    for coll, (readers, name, text) in DEPT_DOCS.items():
        sub = folder / coll
        sub.mkdir(parents=True)
        (sub / name).write_text(text, encoding="utf-8")
        app.catalog.ensure_collection(coll, readers=readers)
        assert not app.ingestor.ingest([sub], collection=coll).failed
