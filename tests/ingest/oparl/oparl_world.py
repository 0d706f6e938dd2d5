"""A small council information system speaking OParl 1.1, written for these tests.

The objects follow the OParl 1.1 specification and its examples (System → body list →
Body with ``paper`` and ``meeting`` lists; Paper with embedded ``mainFile``,
``auxiliaryFile`` and ``consultation``; Meeting with ``invitation``, ``resultsProtocol``,
``verbatimProtocol`` and ``auxiliaryFile``; lists with ``data``, ``pagination`` and
``links.next``; ``modified_since`` filtering; deleted objects that keep only ``id``,
``type``, ``created``, ``modified`` and ``deleted: true``). The world also misbehaves on
purpose: a missing file (404), a slow file, a huge file that lies about its size, a file
whose ``mimeType`` is wrong, and a file linked by URL instead of embedded.

:class:`OParlServer` serves a world on 127.0.0.1 from a thread and counts requests.
"""
from __future__ import annotations

import datetime as dt
import functools
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from fpdf import FPDF

T = "https://schema.oparl.org/1.1/"
OLD = "2025-03-01T10:00:00+01:00"

#: fast and small limits for the test server (the slow file must time out in well under a second)
FAST_OPARL = {"timeout_s": 0.4, "retries": 1, "backoff_s": 0.01, "max_file_bytes": 1024 * 1024}


def pdf_bytes(pages: list[str]) -> bytes:
    """A real PDF with one text page per entry (core font, so umlauts and ß survive)."""
    return _pdf(tuple(pages))


@functools.lru_cache(maxsize=64)
def _pdf(pages: tuple[str, ...]) -> bytes:
    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    return bytes(pdf.output())


def now_iso() -> str:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()


@dataclass
class FileSpec:
    content: bytes = b""
    status: int = 200
    delay_s: float = 0.0
    huge_bytes: int = 0  # stream this many bytes without Content-Length
    sent: int = 0


@dataclass
class OParlWorld:
    base: str
    page_size: int = 2
    papers: dict[str, dict] = field(default_factory=dict)
    meetings: dict[str, dict] = field(default_factory=dict)
    files: dict[str, FileSpec] = field(default_factory=dict)
    objects: dict[str, dict] = field(default_factory=dict)  # File objects linked by URL

    # -- building ----------------------------------------------------------------
    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def system(self) -> dict:
        return {"id": self.url("/oparl/v1"), "type": T + "System", "oparlVersion": T,
                "name": "Ratsinformationssystem Musterstadt", "body": self.url("/oparl/v1/bodies"),
                "created": OLD, "modified": OLD}

    def body(self) -> dict:
        return {"id": self.url("/oparl/v1/body/1"), "type": T + "Body", "system": self.url("/oparl/v1"),
                "name": "Stadt Musterstadt", "shortName": "Musterstadt",
                "paper": self.url("/oparl/v1/body/1/papers"), "meeting": self.url("/oparl/v1/body/1/meetings"),
                "organization": self.url("/oparl/v1/body/1/organizations"),
                "person": self.url("/oparl/v1/body/1/people"),
                "created": OLD, "modified": OLD}

    def file(self, fid: str, name: str, file_name: str, content: bytes, *, mime: str = "application/pdf",
             text: str | None = None, size: int | None = None, modified: str = OLD, **spec) -> dict:
        path = f"/files/{fid}/{file_name}"
        self.files[path] = FileSpec(content=content, **spec)
        obj = {"id": self.url(f"/oparl/v1/file/{fid}"), "type": T + "File", "name": name, "fileName": file_name,
               "mimeType": mime, "date": modified[:10], "size": len(content) if size is None else size,
               "accessUrl": self.url(path), "created": OLD, "modified": modified}
        if text is not None:
            obj["text"] = text
        return obj

    def add_paper(self, key: str, reference: str, paper_type: str, name: str, main: dict | None,
                  aux: list | None = None, modified: str = OLD) -> dict:
        obj = {"id": self.url(f"/oparl/v1/paper/{key}"), "type": T + "Paper", "body": self.url("/oparl/v1/body/1"),
               "name": name, "reference": reference, "date": "2025-02-20", "paperType": paper_type,
               "consultation": [{"id": self.url(f"/oparl/v1/consultation/{key}"), "type": T + "Consultation",
                                 "meeting": self.url("/oparl/v1/meeting/1"), "role": "Beschlussfassung",
                                 "authoritative": True}],
               "created": OLD, "modified": modified}
        if main is not None:
            obj["mainFile"] = main
        if aux:
            obj["auxiliaryFile"] = aux
        self.papers[key] = obj
        return obj

    def touch_paper(self, key: str, **changes) -> None:
        self.papers[key].update(changes, modified=now_iso())

    def delete_paper(self, key: str) -> None:
        old = self.papers[key]
        self.papers[key] = {"id": old["id"], "type": old["type"], "created": old["created"],
                            "modified": now_iso(), "deleted": True}

    @classmethod
    def standard(cls, base: str) -> "OParlWorld":
        """Seven papers over four list pages, one meeting, and every kind of trouble."""
        w = cls(base)
        w.add_paper("117", "2025/117", "Beschlussvorlage", "Einführung der Biotonne im Stadtgebiet",
                    w.file("117a", "Vorlage", "vorlage-2025-117.pdf", pdf_bytes([
                        "Beschlussvorlage 2025/117\nSachverhalt: Die Abfallsatzung wird überarbeitet.",
                        "Beschlussvorschlag: Der Rat beschließt die Einführung der Biotonne für alle "
                        "Haushalte ab dem 1. Januar 2026. Die Leerung erfolgt vierzehntäglich; die Gebühr "
                        "beträgt 48 Euro im Jahr.",
                    ])),
                    [w.file("117b", "Anlage 1 Kostenaufstellung", "kosten.pdf",
                            pdf_bytes(["Kostenaufstellung: Anschaffung der Behälter 310.000 Euro."]),
                            mime="text/plain")])  # wrong mimeType: the bytes are a PDF
        w.add_paper("118", "2025/118", "Anfrage", "Anfrage zur Straßenbeleuchtung in der Weststadt",
                    w.file("118a", "Anfrage", "anfrage.pdf", pdf_bytes([
                        "Die Fraktion fragt an, wann die Straßenbeleuchtung in der Weststadt auf LED "
                        "umgestellt wird."])))
        w.add_paper("119", "2025/119", "Mitteilungsvorlage", "Sachstand Schulsanierung Gymnasium",
                    w.file("119a", "Mitteilung", "mitteilung.pdf", pdf_bytes([
                        "Die Sanierung des Gymnasiums am Stadtpark ist zu 60 Prozent abgeschlossen."])),
                    [w.file("119b", "Fotodokumentation", "fotos.pdf", b"", status=404)])
        w.add_paper("120", "2025/120", "Beschlussvorlage", "Neufassung der Parkgebührenordnung",
                    w.file("120a", "Vorlage", "parken.pdf", pdf_bytes(["wird nie ausgeliefert"]), delay_s=3.0,
                           text="Die Parkgebühr in der Innenstadt steigt auf 2,50 Euro je Stunde."))
        w.add_paper("121", "2025/121", "Antrag", "Antrag auf Errichtung eines Skateparks",
                    w.file("121a", "Antrag", "antrag.pdf", pdf_bytes(["Die Fraktion beantragt einen Skatepark "
                                                                       "am Freibad."])),
                    [w.file("121b", "Lageplan", "lageplan.pdf", b"", huge_bytes=20 * 1024 * 1024, size=2000)])
        w.add_paper("122", "2025/122", "Beschlussvorlage", "Haushaltssatzung 2026",
                    w.file("122a", "Vorlage", "haushalt.pdf", pdf_bytes([
                        "Der Haushalt 2026 sieht Erträge von 182 Millionen Euro vor."])),
                    [w.url("/oparl/v1/file/122b")])  # linked, not embedded
        w.objects["/oparl/v1/file/122b"] = w.file("122b", "Stellenplan", "stellenplan.pdf", pdf_bytes([
            "Der Stellenplan 2026 weist 412 Vollzeitstellen aus."]))
        w.add_paper("123", "2025/123", "Bericht", "Bericht <script>alert(1)</script> des Bürgermeisters",
                    w.file("123a", "Bericht", "bericht.pdf", pdf_bytes(["Der Bürgermeister berichtet über "
                                                                         "die Städtepartnerschaft."])))
        w.meetings["1"] = {
            "id": w.url("/oparl/v1/meeting/1"), "type": T + "Meeting", "name": "12. Sitzung des Rates",
            "start": "2025-03-04T18:00:00+01:00", "end": "2025-03-04T21:00:00+01:00",
            "invitation": w.file("m1i", "Einladung", "einladung.pdf", pdf_bytes([
                "Einladung zur 12. Sitzung des Rates am 4. März 2025 im Ratssaal."])),
            "resultsProtocol": w.file("m1p", "Niederschrift", "niederschrift.pdf", pdf_bytes([
                "Niederschrift: Der Rat hat die Einführung der Biotonne mit 31 Ja-Stimmen beschlossen."])),
            "created": OLD, "modified": OLD,
        }
        return w

    # -- serving -----------------------------------------------------------------------
    def _list(self, path: str, items: dict[str, dict], query: dict) -> dict:
        since = query.get("modified_since", [None])[0]
        objs = list(items.values())
        if since:
            limit = dt.datetime.fromisoformat(since)
            objs = [o for o in objs if dt.datetime.fromisoformat(o["modified"]) >= limit]
        else:
            objs = [o for o in objs if not o.get("deleted")]
        page = int(query.get("page", ["1"])[0])
        total_pages = max(1, -(-len(objs) // self.page_size))
        part = objs[(page - 1) * self.page_size: page * self.page_size]
        links = {"first": self.url(path + "?page=1")}
        if page < total_pages:
            nxt = f"{path}?page={page + 1}" + (f"&modified_since={since}".replace("+", "%2B") if since else "")
            links["next"] = self.url(nxt)
        return {"data": part, "pagination": {"totalElements": len(objs), "elementsPerPage": self.page_size,
                                             "currentPage": page, "totalPages": total_pages}, "links": links}

    def json_for(self, path: str, query: dict) -> dict | None:
        if path == "/oparl/v1":
            return self.system()
        if path == "/oparl/v1/bodies":
            return {"data": [self.body()], "pagination": {"totalElements": 1, "currentPage": 1, "totalPages": 1},
                    "links": {}}
        if path == "/oparl/v1/body/1":
            return self.body()
        if path == "/oparl/v1/body/1/papers":
            return self._list(path, self.papers, query)
        if path == "/oparl/v1/body/1/meetings":
            return self._list(path, self.meetings, query)
        if path.startswith("/oparl/v1/paper/"):
            return self.papers.get(path.rsplit("/", 1)[-1])
        if path.startswith("/oparl/v1/meeting/"):
            return self.meetings.get(path.rsplit("/", 1)[-1])
        return self.objects.get(path)


class OParlServer:
    """Serves an :class:`OParlWorld` on 127.0.0.1 (one thread per request) and logs requests."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.redirects: dict[str, str] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def do_GET(self) -> None:  # noqa: N802
                parts = urlsplit(self.path)
                server.requests.append(self.path)
                if parts.path in server.redirects:
                    self.send_response(302)
                    self.send_header("Location", server.redirects[parts.path])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                world = server.world
                spec = world.files.get(parts.path)
                if spec is not None:
                    return self._file(spec)
                data = world.json_for(parts.path, parse_qs(parts.query))
                if data is None:
                    return self._send(404, b'{"error": "not found"}')
                self._send(200, json.dumps(data, ensure_ascii=False).encode("utf-8"))

            def _send(self, status: int, body: bytes, ctype: str = "application/json; charset=utf-8") -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _file(self, spec: FileSpec) -> None:
                if spec.delay_s:
                    time.sleep(spec.delay_s)
                if spec.status != 200:
                    return self._send(spec.status, b"not found", "text/plain")
                if spec.delay_s:  # the client has long given up
                    try:
                        return self._send(200, spec.content, "application/pdf")
                    except OSError:
                        return
                if spec.huge_bytes:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/pdf")
                    self.send_header("Connection", "close")
                    self.end_headers()
                    block = b"%PDF-1.4\n" + b"0" * 65527
                    try:
                        while spec.sent < spec.huge_bytes:
                            self.wfile.write(block)
                            spec.sent += len(block)
                    except OSError:
                        pass  # the client hung up: what we want
                    self.close_connection = True
                    return
                spec.sent += len(spec.content)
                self._send(200, spec.content, "application/octet-stream")

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address) -> None:
                pass  # a client that hung up (timeout, size limit) is what these tests provoke

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.world = OParlWorld.standard(self.base)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), name="oparl-test-server", daemon=True)
        self.thread.start()

    @property
    def system_url(self) -> str:
        return self.base + "/oparl/v1"

    def file_requests(self) -> list[str]:
        return [r for r in self.requests if r.startswith("/files/")]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
