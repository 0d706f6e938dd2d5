import pytest

from assistant.wording import counted


@pytest.mark.parametrize("n, one, many, text", [
    (1, "Verstoß", "Verstöße", "1 Verstoß"),
    (3, "Verstöße", "Verstöße", "3 Verstöße"),
    (0, "Datei", "Dateien", "0 Dateien"),
    (1, "Satz", "Sätzen", "1 Satz"),
    (2, "Satz", "Sätzen", "2 Sätzen"),
    (-1, "Teil", "Teile", "-1 Teile"),
])
def test_counted(n, one, many, text):
    assert counted(n, one, many) == text
