"""German counts: "1 Verstoß", "3 Verstöße" – never "1 Verstöße" or "Datei(en)".

German nouns change with the number and also with the case ("in 1 Satz", "in 3 Sätzen"), so the
caller gives both forms as they stand in its sentence; this only picks one."""
from __future__ import annotations


def counted(n: int, one: str, many: str) -> str:
    """``n`` with the noun form that fits it (``one`` for exactly 1, else ``many``; "0 Dateien")."""
    return f"{n} {one if n == 1 else many}"
