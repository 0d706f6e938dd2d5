"""The ONNX export of the e5 folder: the fp32 graph computes torch's vectors, int8 stays close,
order and prefixes are kept, threads map onto the session, and the wiring builds it by mode."""
from __future__ import annotations

import json

import numpy as np
import pytest

from assistant.wiring import App, ModelMissing
from corpus.embeddings import OnnxEmbedder
from corpus.onnx_model import INT8_NAME, MANIFEST_NAME, TOKENS_NAME, is_current, prepare_onnx_model

TEXTS = [
    "Die Hundesteuer beträgt für den ersten Hund 120 Euro im Jahr.",
    "Sperrmüll",
    "Der Gemeinderat hat in öffentlicher Sitzung die Fortschreibung des Lärmaktionsplans beschlossen; "
    "betroffen sind die Hauptstraße, die Bahnhofstraße und der Ring. " * 3,
    "Wie beantrage ich einen Anwohnerparkausweis?",
]


def test_missing_onnx_model_gives_a_clear_error(tmp_path):
    from assistant.settings import load_settings

    app = App(load_settings(tmp_path / "data", embedding={"mode": "e5_int8"}))
    with pytest.raises(ModelMissing, match="models prepare"):
        app.build_embedder()


def test_index_signature_keeps_torch_and_onnx_fp32_together(tmp_path):
    from assistant.settings import load_settings

    sig = {m: App(load_settings(tmp_path / m, embedding={"mode": m})).index_signature for m in ("e5", "e5_onnx", "e5_int8")}
    assert sig["e5"] == sig["e5_onnx"] != sig["e5_int8"]


@pytest.mark.integration
def test_onnx_fp32_matches_torch_and_int8_stays_close(e5_onnx_dir, e5_dir, real_embedder):
    ref = real_embedder.embed_passages(TEXTS)
    fp32 = OnnxEmbedder(e5_onnx_dir, model_file="model.onnx", threads=2).embed_passages(TEXTS, batch_size=2)
    int8 = OnnxEmbedder(e5_onnx_dir, threads=2).embed_passages(TEXTS, batch_size=2)
    assert fp32.shape == int8.shape == ref.shape == (4, 384)
    assert np.sum(fp32 * ref, axis=1).min() > 0.9999  # same model, same vectors, same order
    assert np.sum(int8 * ref, axis=1).min() > 0.98
    assert np.allclose(np.linalg.norm(int8, axis=1), 1.0, atol=1e-4)
    q = OnnxEmbedder(e5_onnx_dir, model_file="model.onnx").embed_query_vector(TEXTS[3])
    assert float(q @ real_embedder.embed_query_vector(TEXTS[3])) > 0.9999  # the query prefix is applied
    assert float(q @ ref[3]) < 0.9999  # … and differs from the passage prefix


@pytest.mark.integration
def test_prepare_is_idempotent_and_checks_its_source(e5_onnx_dir, e5_dir):
    manifest = json.loads((e5_onnx_dir / MANIFEST_NAME).read_text())
    assert manifest["verified_min_cosine"]["fp32"] >= 0.9999 and manifest["verified_min_cosine"]["int8"] >= 0.97
    assert manifest["verified_min_cosine"]["tokens"] >= 0.9999 and TOKENS_NAME in manifest["files"]
    assert is_current(e5_onnx_dir, e5_dir)
    before = (e5_onnx_dir / INT8_NAME).stat().st_mtime
    assert prepare_onnx_model(e5_dir, e5_onnx_dir) == e5_onnx_dir
    assert (e5_onnx_dir / INT8_NAME).stat().st_mtime == before


@pytest.mark.integration
def test_onnx_token_vectors_are_torch_s_token_for_token(e5_onnx_dir, real_embedder):
    """Late interaction's token vectors (assistant.late_interaction) without torch at question time."""
    onnx = OnnxEmbedder(e5_onnx_dir)
    assert onnx.has_token_vectors()
    for query in (False, True):
        got, ref = onnx.token_vectors(TEXTS, query=query), real_embedder.token_vectors(TEXTS, query=query)
        assert [g.shape for g in got] == [r.shape for r in ref]  # same tokens, markers and prefix left out alike
        assert min(float(np.mean(np.sum(g * r, axis=1))) for g, r in zip(got, ref)) > 0.9999
        assert all(np.allclose(np.linalg.norm(g, axis=1), 1.0, atol=1e-4) for g in got)
    assert onnx.token_vectors([]) == []
    assert not OnnxEmbedder(e5_onnx_dir, tokens_file="fehlt.onnx").has_token_vectors()


@pytest.mark.integration
def test_threads_map_onto_the_session(e5_onnx_dir):
    emb = OnnxEmbedder(e5_onnx_dir, threads=3, query_threads=1)
    emb.embed_query_vector("Hallo")
    assert emb.threads == 3 and emb.query_threads == 1
    emb.embed_passages(TEXTS * 3, batch_size=2)  # six batches run on three workers
    assert emb._pool is not None and emb._pool._max_workers == 3
    assert OnnxEmbedder(e5_onnx_dir, threads=2, query_threads=0).query_threads == 2
    assert OnnxEmbedder(e5_onnx_dir).count_tokens("Hundesteuer") > 0


def test_batches_keep_to_the_token_budget(tmp_path):
    """The plan of session runs that keeps the ingest's peak RSS down (OnnxEmbedder._batches):
    longest texts first, never more than ``batch_size`` texts or ``max_batch_tokens`` padded
    tokens in one run (a single longer text runs alone), every text exactly once."""
    emb = OnnxEmbedder(tmp_path, max_batch_tokens=1024)  # nothing is loaded for planning
    assert OnnxEmbedder(tmp_path).max_batch_tokens == 4096  # the default the figures were taken with
    lengths = [512] * 5 + [200] * 40 + [30] * 70 + [1500]
    plan = emb._batches(lengths, batch_size=32)
    assert sorted(np.concatenate(plan).tolist()) == list(range(len(lengths)))
    assert [len(b) for b in plan[:4]] == [1, 2, 2, 2]  # 1500 alone, then 512-token texts two by two
    for rows in plan:
        width = max(lengths[i] for i in rows)
        assert len(rows) <= 32 and (len(rows) * width <= 1024 or len(rows) == 1)
        assert width == lengths[rows[0]]  # the first text of a run is its longest
    assert [len(b) for b in plan[-3:]] == [32, 32, 5]  # short texts still fill whole batches


@pytest.mark.integration
def test_token_budget_changes_no_vector(e5_onnx_dir):
    """Smaller runs for long texts compute the same vectors in the same order (fp32 graph: the
    int8 graph quantises activations per run, so its vectors move with the batch anyway)."""
    texts = TEXTS * 4
    whole = OnnxEmbedder(e5_onnx_dir, model_file="model.onnx", threads=2, max_batch_tokens=10**9)
    split = OnnxEmbedder(e5_onnx_dir, model_file="model.onnx", threads=2, max_batch_tokens=64)
    assert np.sum(whole.embed_passages(texts) * split.embed_passages(texts), axis=1).min() > 0.9999

