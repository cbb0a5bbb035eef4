"""Embeddings on real libraries: a tiny BERT through mlx-embeddings, a tiny Qwen3 through mlx-lm.

Expected vectors are computed here straight from the libraries, one input at a time (no padding),
so the runtime's batching, padding masks and pooling are checked against the unbatched truth.
"""

from __future__ import annotations

import numpy as np
import pytest

from adapters.mlx.runtime import MlxRuntime
from application.errors import InvalidRequest
from application.inference.ports import EmbeddingRequest
from domain.enums import ModelType
from tests.support.tiny_models import cached_model

pytestmark = pytest.mark.slow

TEXTS = ("hello world", "The quick brown fox jumps over the lazy dog.", "a", "one two three four five six")


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    root = tmp_path_factory.getbasetemp() / "tiny-models"
    return {"bert": cached_model("bert", root), "qwen3": cached_model("qwen3_embedding", root)}


@pytest.fixture(scope="module")
def runtime():
    return MlxRuntime(max_embedding_batch=3)  # 4 inputs -> two batches, both padded


def bert_reference(path, text):
    from mlx_embeddings import load

    model, tokenizer = load(str(path))
    ids = tokenizer.batch_encode_plus([text], return_tensors="mlx", padding=True)
    out = model(ids["input_ids"], attention_mask=ids["attention_mask"])
    return np.array(out.text_embeds[0].tolist())  # mlx-embeddings' own mean pooling + normalisation


def qwen3_reference(path, text):
    import mlx.core as mx
    import mlx_lm
    from transformers import AutoTokenizer

    model, _ = mlx_lm.load(str(path))
    tokens = AutoTokenizer.from_pretrained(str(path))(text)["input_ids"]
    hidden = model.model(mx.array([tokens]))[0, -1]  # the model card's last-token pooling
    vector = np.array(hidden.tolist())
    return vector / np.linalg.norm(vector)


@pytest.mark.parametrize("kind,reference", [("bert", bert_reference), ("qwen3", qwen3_reference)])
def test_batched_vectors_equal_one_by_one_library_vectors(runtime, dirs, kind, reference):
    model = runtime.load(kind, dirs[kind], ModelType.EMBEDDINGS)
    try:
        result = runtime.embed(model, EmbeddingRequest(TEXTS))
        assert len(result.vectors) == len(TEXTS)
        for text, vector in zip(TEXTS, result.vectors):
            assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)
            np.testing.assert_allclose(vector, reference(dirs[kind], text), atol=2e-5)
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(dirs[kind]))
        assert result.prompt_tokens == sum(len(tokenizer(t)["input_ids"]) for t in TEXTS)  # real tokens
    finally:
        runtime.unload(model)


def test_token_arrays_embed_like_their_text(runtime, dirs):
    from transformers import AutoTokenizer

    model = runtime.load("bert", dirs["bert"], ModelType.EMBEDDINGS)
    try:
        tokens = tuple(AutoTokenizer.from_pretrained(str(dirs["bert"]))("hello world")["input_ids"])
        by_text = runtime.embed(model, EmbeddingRequest(("hello world",)))
        by_tokens = runtime.embed(model, EmbeddingRequest((tokens,)))
        np.testing.assert_allclose(by_tokens.vectors[0], by_text.vectors[0], atol=1e-6)
        assert by_tokens.prompt_tokens == len(tokens)
        with pytest.raises(InvalidRequest, match="outside the vocabulary"):
            runtime.embed(model, EmbeddingRequest(((1, 10**6),)))
    finally:
        runtime.unload(model)


def test_long_inputs_are_refused_unless_truncation_is_asked(runtime, dirs):
    model = runtime.load("bert", dirs["bert"], ModelType.EMBEDDINGS)
    try:
        long_text = "hello " * 400
        with pytest.raises(InvalidRequest, match="max sequence length 128"):
            runtime.embed(model, EmbeddingRequest((long_text,)))
        result = runtime.embed(model, EmbeddingRequest((long_text,), truncate=True))
        assert result.prompt_tokens == 128
    finally:
        runtime.unload(model)


def test_dimensions_truncate_matryoshka_models_only(runtime, dirs):
    qwen = runtime.load("qwen3", dirs["qwen3"], ModelType.EMBEDDINGS)  # its card says matryoshka
    bert = runtime.load("bert", dirs["bert"], ModelType.EMBEDDINGS)
    try:
        full = runtime.embed(qwen, EmbeddingRequest(("hello world",))).vectors[0]
        short = runtime.embed(qwen, EmbeddingRequest(("hello world",), dimensions=8)).vectors[0]
        head = np.array(full[:8])
        np.testing.assert_allclose(short, head / np.linalg.norm(head), atol=1e-5)
        with pytest.raises(InvalidRequest, match="not Matryoshka"):
            runtime.embed(bert, EmbeddingRequest(("hello world",), dimensions=8))
        with pytest.raises(InvalidRequest, match="between 1 and 32"):
            runtime.embed(qwen, EmbeddingRequest(("hello world",), dimensions=64))
        assert len(runtime.embed(bert, EmbeddingRequest(("hi",), dimensions=32)).vectors[0]) == 32  # native: fine
    finally:
        runtime.unload(qwen)
        runtime.unload(bert)
