"""OParl objects as the importer needs them, and the pure decisions about them.

Everything a server sends is data: names and texts are cleaned of control characters
and cut to a sane length here, once, and are never treated as markup anywhere (the
portal escapes every title it shows). The citation label of a file is built here, so
a source reads „Drucksache 2025/117 (Beschlussvorlage): Einführung …“ or
„4. Sitzung des Finanzausschusses am 04.01.2013 – Ergebnisprotokoll“.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

PAPER_FILE_ROLES = ("mainFile", "auxiliaryFile")
MEETING_FILE_ROLES = ("invitation", "resultsProtocol", "verbatimProtocol", "auxiliaryFile")
ROLE_LABELS = {
    "mainFile": "", "auxiliaryFile": "Anlage", "invitation": "Einladung",
    "resultsProtocol": "Ergebnisprotokoll", "verbatimProtocol": "Wortprotokoll",
}
TITLE_CHARS = 240
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069]+")
_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})")


def clean(value: object, limit: int = TITLE_CHARS) -> str:
    """One line of plain text from whatever the server sent (non-strings become '')."""
    if not isinstance(value, str):
        return ""
    text = " ".join(_CONTROL.sub(" ", value).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def german_date(value: object) -> str:
    """``2025-03-04`` or ``2025-03-04T18:00:00+01:00`` → ``04.03.2025`` ('' if not a date)."""
    m = _DATE.match(value) if isinstance(value, str) else None
    return f"{m.group(3)}.{m.group(2)}.{m.group(1)}" if m else ""


def kind_of(obj: dict) -> str:
    """``paper``, ``meeting``, ``body``, ``system``, ``file`` … from the OParl ``type`` URL."""
    t = obj.get("type") if isinstance(obj, dict) else None
    return t.rstrip("/").rsplit("/", 1)[-1].lower() if isinstance(t, str) and t else ""


@dataclass(frozen=True)
class RemoteFile:
    id: str
    role: str
    name: str = ""
    file_name: str = ""
    access_url: str = ""
    download_url: str = ""
    modified: str = ""
    sha1: str = ""
    size: int | None = None
    text: str = ""

    @property
    def url(self) -> str:
        """Where the bytes come from: ``downloadUrl`` if given, else ``accessUrl``."""
        return self.download_url or self.access_url


@dataclass(frozen=True)
class Item:
    """A paper (Drucksache) or a meeting with the files that become documents."""

    id: str
    kind: str  # "paper" | "meeting"
    modified: str = ""
    deleted: bool = False
    label: str = ""
    meta: dict = field(default_factory=dict)
    files: tuple[RemoteFile, ...] = ()


def parse_file(obj: dict, role: str) -> RemoteFile | None:
    """A File object (already fetched if it was a link); None for a deleted or id-less one."""
    if not isinstance(obj, dict) or not isinstance(obj.get("id"), str) or obj.get("deleted") is True:
        return None
    size = obj.get("size")
    sha1 = obj.get("sha1Checksum")
    text = obj.get("text")
    return RemoteFile(
        id=obj["id"], role=role, name=clean(obj.get("name")), file_name=clean(obj.get("fileName"), 200),
        access_url=obj.get("accessUrl") if isinstance(obj.get("accessUrl"), str) else "",
        download_url=obj.get("downloadUrl") if isinstance(obj.get("downloadUrl"), str) else "",
        modified=clean(obj.get("modified"), 64),
        sha1=sha1.lower() if isinstance(sha1, str) and re.fullmatch(r"[0-9a-fA-F]{40}", sha1) else "",
        size=size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else None,
        text=text.strip() if isinstance(text, str) else "",
    )


def _files(obj: dict, roles: tuple[str, ...]) -> tuple[RemoteFile, ...]:
    """The object's files in role order, each file id once (servers reuse one file for several roles)."""
    out: list[RemoteFile] = []
    seen: set[str] = set()
    for role in roles:
        value = obj.get(role)
        for entry in value if isinstance(value, list) else [value] if value else []:
            f = parse_file(entry, role) if isinstance(entry, dict) else None
            if f is not None and f.id not in seen:
                seen.add(f.id)
                out.append(f)
    return tuple(out)


def paper_label(obj: dict) -> str:
    """„Drucksache 2025/117 (Beschlussvorlage): Einführung …“ (parts left out when missing)."""
    ref, ptype, name = clean(obj.get("reference"), 60), clean(obj.get("paperType"), 80), clean(obj.get("name"))
    head = "Drucksache" + (f" {ref}" if ref else "") + (f" ({ptype})" if ptype else "")
    return clean(f"{head}: {name}" if name else head)


def meeting_label(obj: dict) -> str:
    """„4. Sitzung des Finanzausschusses am 04.01.2013“."""
    name = clean(obj.get("name")) or "Sitzung"
    day = german_date(obj.get("start"))
    return clean(f"{name} am {day}" if day else name)


def parse_item(obj: dict, body: dict) -> Item | None:
    """A paper or meeting from a list entry; None for other types. Deleted objects keep only id."""
    kind = kind_of(obj)
    if kind not in ("paper", "meeting") or not isinstance(obj.get("id"), str):
        return None
    modified = clean(obj.get("modified"), 64)
    if obj.get("deleted") is True:
        return Item(id=obj["id"], kind=kind, modified=modified, deleted=True)
    meta = {
        "source": "oparl", "oparl_type": kind, "oparl_id": obj["id"],
        "body": clean(body.get("name") or body.get("shortName")), "body_id": body.get("id", ""),
        "name": clean(obj.get("name")),
    }
    if kind == "paper":
        meta.update(reference=clean(obj.get("reference"), 60), paper_type=clean(obj.get("paperType"), 80),
                    date=clean(obj.get("date"), 32))
        consultations = []
        for c in obj.get("consultation") or []:
            if isinstance(c, dict):
                consultations.append({k: v for k, v in {
                    "meeting": c.get("meeting") if isinstance(c.get("meeting"), str) else "",
                    "role": clean(c.get("role"), 80), "authoritative": c.get("authoritative") is True,
                }.items() if v not in ("", None)})
        if consultations:
            meta["consultations"] = consultations
        return Item(obj["id"], kind, modified, False, paper_label(obj), meta, _files(obj, PAPER_FILE_ROLES))
    meta.update(meeting_date=clean(obj.get("start"), 32))
    return Item(obj["id"], kind, modified, False, meeting_label(obj), meta, _files(obj, MEETING_FILE_ROLES))


def file_title(item: Item, f: RemoteFile) -> str:
    """The citation title of one file of ``item`` (the main file of a paper is the paper itself)."""
    role = ROLE_LABELS.get(f.role, "")
    if not role:
        return item.label
    if f.role == "auxiliaryFile":
        name = f.name or f.file_name
        role = f"{role}: {name}" if name else role
    return clean(f"{item.label} – {role}", 400)


def file_meta(item: Item, f: RemoteFile, *, text_fallback: bool = False) -> dict:
    """What ``docs list --json`` shows for the document of file ``f``."""
    meta = dict(item.meta, title=file_title(item, f), file_id=f.id, file_role=f.role,
                file_name=f.name or f.file_name, access_url=f.access_url or f.download_url)
    if text_fallback:
        meta["text_fallback"] = True
    return meta


def needs_download(stored: dict | None, f: RemoteFile) -> bool:
    """Fetch ``f`` again? Only when it changed by what the server says (``sha1Checksum``
    first, then ``modified``, then ``size``), when it was never fetched, or when last time
    only its ``text`` could be used. Without any of the three there is no way to tell: fetch."""
    if not stored or stored.get("mode") != "file":
        return True
    if f.sha1 and stored.get("sha1"):
        return f.sha1 != stored["sha1"]
    if f.modified and stored.get("modified"):
        return f.modified != stored["modified"]
    if f.size is not None and stored.get("size") is not None:
        return f.size != stored["size"]
    return True
