"""Late interaction: the pure decisions as tables, the re-ranker with a word-level fake encoder, its
place in the hybrid search (hash embedder), and the wiring that switches it on or off."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

from assistant.late_interaction import LateInteraction, late_order, maxsim
from assistant.retrieval import HybridRetriever
from assistant.wiring import App, ModelMissing
from corpus.catalog import DocumentRecord
from corpus.knowledge_base import index_text
from corpus.models import Chunk, Hit
from settings_factory import make_settings

DIM = 64


def _word_vector(word: str) -> np.ndarray:
    v = np.random.default_rng(int(hashlib.sha1(word.lower().encode()).hexdigest()[:8], 16)).standard_normal(DIM)
    return (v / np.linalg.norm(v)).astype(np.float32)


class WordEncoder:
    """One token per word, the same vector for the same word anywhere: MaxSim = share of question words present."""

    def __init__(self) -> None:
        self.passages_encoded: list[str] = []
        self.runs: list[list[str]] = []

    def token_vectors(self, texts, *, query=False):
        if not query:
            self.passages_encoded.extend(texts)
            self.runs.append(list(texts))
        return [np.stack([_word_vector(w) for w in t.replace("?", " ").replace(".", " ").split()] or [np.zeros(DIM)])
                for t in texts]


@pytest.mark.parametrize("scores, weight, k, expected", [
    ([0.1, 0.2, 0.3], 0.0, 20, [0, 1, 2]),        # no weight: the fused order
    ([0.1, 0.2, 0.3], 100.0, 20, [2, 1, 0]),      # all weight: the late order
    ([0.5, 0.5, 0.5], 4.0, 20, [0, 1, 2]),        # equal scores: the fused order
    ([0.1, 0.9, 0.2], 1.0, 20, [1, 0, 2]),        # 1/21+1/23 < 1/22+1/21: the second moves up
    ([0.3, 0.2, 0.1, 0.9], 1.0, 20, [0, 3, 1, 2]),  # a last place first by score meets the first in between
    ([], 4.0, 20, []),
])
def test_late_order(scores, weight, k, expected):
    assert late_order(scores, weight=weight, k=k) == expected


def test_maxsim_takes_each_question_tokens_best_match():
    a, b, c = np.eye(3, dtype=np.float32)
    assert maxsim(np.stack([a, b]), np.stack([b, c, a])) == pytest.approx(1.0)
    assert maxsim(np.stack([a, b]), np.stack([a, c])) == pytest.approx(0.5)  # b finds only orthogonal tokens
    assert maxsim(np.stack([a]), np.zeros((0, 3), dtype=np.float32)) == 0.0


def test_a_passage_with_every_question_word_moves_before_one_with_the_topic_only():
    late = LateInteraction(WordEncoder(), candidates=3, weight=4.0, k=20)
    texts = ["Parken Gebühren Parken Gebühren Parken", "Stadtpark Öffnungszeiten", "Bewohnerparkausweis kostet jährlich 30 Euro"]
    order, ranks = late.order("Was kostet der Bewohnerparkausweis jährlich", texts)
    assert order[0] == 2 and ranks[2] == 1


def test_only_the_first_candidates_are_re_ranked_and_passages_are_encoded_once():
    enc = WordEncoder()
    late = LateInteraction(enc, candidates=2, weight=100.0, k=20)
    texts = ["eins zwei", "Antrag Frist", "Antrag Frist drei"]
    order, ranks = late.order("Antrag Frist", texts)
    assert order == [1, 0] and ranks == [2, 1]  # the third text is not a candidate
    late.order("Frist Antrag", texts)
    assert enc.passages_encoded == ["eins zwei", "Antrag Frist"]  # kept from the first question
    assert enc.runs == [["eins zwei"], ["Antrag Frist"]]  # one passage a run: vectors never depend on neighbours


def test_kept_passages_are_bounded_by_memory():
    enc = WordEncoder()
    one_passage = DIM * 2  # one word, one float16 row
    late = LateInteraction(enc, candidates=5, keep_mb=2 * one_passage / 1024 / 1024)
    late.scores("a", ["p1", "p2", "p3"])
    late.scores("a", ["p1"])  # pushed out by p2 and p3
    assert enc.passages_encoded == ["p1", "p2", "p3", "p1"]
    assert late._kept_bytes == 2 * one_passage and len(late._kept) == 2
    late.forget()
    assert late._kept_bytes == 0 and not late._kept


def _fill(app, texts: dict[str, str]) -> None:
    kb = app.kb
    for doc_id, text in texts.items():
        chunk = Chunk(chunk_id=f"{doc_id}:v1:0", doc_id=doc_id, ordinal=0, text=text, source=f"/d/{doc_id}.txt",
                      title=doc_id, page=1, section=None, collection="allgemein")
        rec = DocumentRecord(doc_id=doc_id, source=chunk.source, path=chunk.source, collection="allgemein",
                             status="indexed", title=doc_id, format="txt")
        kb.store_version(rec, [chunk], kb.embedder.embed_passages([index_text(chunk)]))
    kb.refresh_keyword_index()


def _hits(texts: dict[str, str]) -> list[Hit]:
    return [Hit(chunk=Chunk(chunk_id=f"{d}:v1:0", doc_id=d, ordinal=0, text=t, source=f"/d/{d}.txt", title=d, page=1,
                            section=None, collection="allgemein"), score=1.0 / (60 + i))
            for i, (d, t) in enumerate(texts.items(), start=1)]


FUSED = {f"d{i}": f"Gebühr Parken Thema {i}" for i in range(6)} | {"answer": "Gebühr Bewohnerparkausweis jährlich 30 Euro"}
QUESTION = "Gebühr Bewohnerparkausweis jährlich"


@pytest.mark.parametrize("candidates, first, tail", [
    (7, "answer", []),                 # the answer, last in the fused order, becomes the first
    (3, "d0", ["d3", "d4", "d5", "answer"]),  # beyond the candidates: unchanged, behind them
])
def test_late_re_ranks_only_its_candidates_and_marks_their_places(candidates, first, tail):
    hits = _hits(FUSED)
    late = LateInteraction(WordEncoder(), candidates=candidates, weight=100.0)
    out = HybridRetriever._late(late, QUESTION, hits)
    assert [h.chunk.doc_id for h in out[candidates:]] == tail and out[0].chunk.doc_id == first
    assert sorted(h.late_rank for h in out[:candidates]) == list(range(1, candidates + 1))
    assert all(h.late_rank is None for h in out[candidates:])
    assert sorted(h.chunk.chunk_id for h in out) == sorted(h.chunk.chunk_id for h in hits)  # nothing added, lost


class Failing:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    def token_vectors(self, texts, *, query=False):
        raise self.exc


def test_an_encoder_failure_keeps_the_fused_order_and_a_stop_still_stops(caplog):
    from assistant.stopping import Stopped

    hits = _hits(FUSED)
    out = HybridRetriever._late(LateInteraction(Failing(RuntimeError("Token-Graph beschädigt"))), QUESTION, hits)
    assert out == hits and "fused order stands" in caplog.text  # an optional step never costs the answer
    with pytest.raises(Stopped):
        HybridRetriever._late(LateInteraction(Failing(Stopped())), QUESTION, hits)


def test_a_stop_between_passages_ends_the_encoding():
    from assistant.stopping import Stopped, stoppable

    enc = WordEncoder()
    late = LateInteraction(enc, candidates=7)
    with stoppable(lambda: len(enc.runs) >= 2), pytest.raises(Stopped):
        late.order(QUESTION, list(FUSED.values()))
    assert len(enc.runs) == 2  # not all seven


class Preferring:
    """Scores 1 for passages holding ``word``, 0 for the rest, whatever the fused order says."""

    def __init__(self, word: str) -> None:
        self.word = word

    def token_vectors(self, texts, *, query=False):
        yes, no = np.eye(2, dtype=np.float32)
        return [yes[None] if query or self.word in t else no[None] for t in texts]


def test_hybrid_search_re_ranks_only_when_asked_and_says_so_in_each_hit(hash_app):
    _fill(hash_app, FUSED)
    kb = hash_app.kb
    plain = HybridRetriever(kb, k=5)
    late = HybridRetriever(kb, k=5, late=LateInteraction(Preferring("Thema 3"), candidates=7, weight=100.0))
    before = plain.search(QUESTION, k=7).hits
    assert before[0].chunk.doc_id != "d3"  # the fused order puts another passage first …
    after = late.search(QUESTION, k=5, late=True).hits
    assert len(after) == 5 and after[0].chunk.doc_id == "d3" and after[0].late_rank == 1  # … the late order d3
    assert all(h.late_rank for h in after) and all(h.late_rank is None for h in before)
    # a plain search (the search list, the CLI) stays the fused order, in milliseconds
    assert [h.chunk.chunk_id for h in late.search(QUESTION, k=7).hits] == [h.chunk.chunk_id for h in before]
    # a search of one retriever alone (the trainer's comparison) is never re-ranked
    assert [h.chunk.chunk_id for h in late.search(QUESTION, k=5, mode="bm25", late=True).hits] == \
           [h.chunk.chunk_id for h in plain.search(QUESTION, k=5, mode="bm25").hits]


@pytest.mark.parametrize("overrides, built", [
    ({"embedding": {"mode": "sentence_transformers", "model": "/nirgends"}}, True),  # its own token vectors
    ({}, False),                                                   # the hash embedder has no token vectors
    ({"embedding": {"mode": "e5"}, "retrieval": {"late_candidates": 0}}, False),
    ({"embedding": {"mode": "e5"}, "retrieval": {"late_weight": 0}}, False),
])
def test_wiring_switches_late_interaction_off(tmp_path, overrides, built):
    app = App(make_settings(tmp_path / "data", **overrides))
    assert (app.late_interaction() is not None) is built


def test_wiring_asks_for_the_prepared_model(tmp_path):
    app = App(make_settings(tmp_path / "data", embedding={"mode": "e5_int8"}))
    with pytest.raises(ModelMissing, match="models prepare"):
        app.late_interaction()


@pytest.mark.integration
def test_real_token_vectors_leave_out_markers_and_the_query_prefix(real_embedder):
    question = "Wie teuer ist der Bewohnerparkausweis?"
    n_tokens = real_embedder.count_tokens(question)
    q, p = real_embedder.token_vectors([question], query=True)[0], real_embedder.token_vectors([question])[0]
    assert q.shape == (n_tokens, 384)  # "query:" and <s> … </s> left out
    assert p.shape[0] == n_tokens + real_embedder.count_tokens("passage:")  # a passage keeps its prefix
    assert np.allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-5)


@pytest.mark.integration
def test_real_model_ranks_the_passage_that_answers_before_the_one_on_the_topic(real_app):
    """The real app's retriever re-ranks (e5 mode), with the e5 model's own token vectors."""
    late = real_app.retriever.late
    assert late is not None and late.encoder is real_app.kb.embedder
    texts = ["Bewohnerparken in der Innenstadt: Übersicht der Zonen, Karten und Ansprechpartner im Bürgerbüro.",
             "Ein Bewohnerparkausweis kostet für zwölf Monate 30 Euro, für sechs Monate 15 Euro.",
             "Parkgebühren in städtischen Parkhäusern werden nach Stunden berechnet."]
    scores = late.scores("Was muss man für einen Anwohnerparkschein im Jahr bezahlen?", texts)
    assert scores[1] == max(scores), scores


def test_forget_drops_the_kept_passages():
    enc = WordEncoder()
    late = LateInteraction(enc, candidates=5)
    late.scores("a", ["p1"])
    late.forget()
    late.scores("a", ["p1"])
    assert enc.passages_encoded == ["p1", "p1"]


def _home_with_models(tmp_path, e5_dir, onnx_files):
    """A data dir whose models folder links the prepared e5 folder and the given ONNX files."""
    home = tmp_path / "data"
    onnx = home / "models" / "multilingual-e5-small-onnx"
    onnx.mkdir(parents=True)
    (home / "models" / "multilingual-e5-small").symlink_to(e5_dir)
    for f in onnx_files:
        (onnx / f.name).symlink_to(f)
    return home


@pytest.mark.integration
def test_the_onnx_modes_take_their_token_vectors_from_the_onnx_token_graph(tmp_path, e5_dir, e5_onnx_dir, caplog):
    from corpus.embeddings import OnnxEmbedder
    from corpus.onnx_model import TOKENS_NAME

    files = list(e5_onnx_dir.iterdir())
    app = App(make_settings(_home_with_models(tmp_path / "a", e5_dir, files), embedding={"mode": "e5_int8"}))
    late = app.late_interaction()
    assert isinstance(late.encoder, OnnxEmbedder) and late.encoder is app.kb.embedder  # no torch weights loaded
    # a folder exported before the token graph existed: off, with a warning, until `models prepare` runs
    # again (torch's weights beside the ONNX graphs would cost every replica half a gigabyte)
    older = App(make_settings(_home_with_models(tmp_path / "b", e5_dir, [f for f in files if f.name != TOKENS_NAME]),
                              embedding={"mode": "e5_int8"}))
    assert older.late_interaction() is None and "models prepare" in caplog.text
    assert older.retriever.search("Hundesteuer", k=2, late=True).hits == []  # searches go on (an empty index)


def test_the_answer_chain_re_ranks_before_a_model_reads_but_not_for_quotes_only(hash_app):
    from assistant.chain import Assistant
    from assistant.llm.fake import FakeChatModel

    _fill(hash_app, FUSED)
    retriever = hash_app.retriever
    retriever.late = LateInteraction(Preferring("Thema 3"), candidates=7, weight=100.0)
    asked: list[bool] = []
    search = retriever.search

    def spy(*args, **kwargs):
        asked.append(kwargs.get("late", False))
        return search(*args, **kwargs)

    retriever.search = spy
    fake = FakeChatModel(respond=lambda p: "Der Bewohnerparkausweis kostet jährlich 30 Euro Gebühr [1].")

    def model(key):
        if key == "kaputt":
            raise RuntimeError("Modelldatei fehlt")
        return {"lokal": fake, "extraktiv": None}[key]

    hash_app.settings.llm.models["kaputt"] = hash_app.settings.llm.models["lokal"].model_copy()
    assistant = Assistant(retriever, hash_app.settings, model)
    with_model = assistant.answer(QUESTION)
    assert "[1] d3" in fake.calls[0]  # the late order's first passage is source 1 (the fused order's is not)
    assert with_model.passages[0].doc_id == "d3" and with_model.passages[0].late_rank == 1
    quotes_only = assistant.answer(QUESTION, model="extraktiv")
    failed = assistant.answer(QUESTION, model="kaputt")  # the model did not load: quotes, at once
    assert asked == [True, False, False] and failed.fallback
    assert all(p.late_rank is None for p in quotes_only.passages + failed.passages)
