"""Embeddings throughput: mlxm against calling mlx-embeddings directly, same model, same run.

    .venv/bin/python bench/embeddings.py [--batch 32] [--rounds 15] [--hidden 128] [--layers 2]

Builds a random-weight BERT (default hidden 128 x 2 layers; all-MiniLM is 384 x 6: --hidden 384 --layers 6) offline
(tests/support/tiny_model_types.py) and prints inputs/s for batches of `--batch` sentences:

  (a) mlx-embeddings directly: tokenizer.batch_encode_plus + model(...) -> text_embeds -> lists
      (the baseline: what a script calling the engine itself does)
  (b) mlxm's InferenceService.embed, in process (pool lease, tokenizing, batching, pooling)
  (c) mlxm over HTTP: uvicorn on loopback, the openai SDK's embeddings.create (base64 on the wire)

and the ratios (b)/(a) and (c)/(a); target for (c)/(a) >= 0.9. Rounds alternate (a), (b), (c) so
machine noise hits all alike; medians are reported. The vectors of (a), (b), (c) are compared.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

WORDS = ("the quick brown fox jumps over the lazy dog while a local model manager serves "
         "embeddings for search and retrieval on apple silicon and on the cpu").split()


def sentences(n: int) -> list[str]:
    # Different lengths (8..23 words), as a real batch has.
    return [" ".join(WORDS[(i * 3) % 7: (i * 3) % 7 + 8 + (i % 16)]) for i in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--cache", help="where to keep the built model (default: a temp dir)")
    args = parser.parse_args()

    import mlx.core as mx
    import numpy as np
    import openai
    from mlx_embeddings import load

    from adapters.catalog.embedded import EmbeddedCatalogProvider
    from adapters.system.clock import SystemClock
    from adapters.memory.repositories import InMemoryUnitOfWork
    from adapters.mlx.runtime import MlxRuntime
    from application.inference.service import InferenceService
    from application.inference.pool import ModelPool, PoolLimits
    from domain.enums import ModelType
    from domain.library.models import Model
    from entrypoints.http.app import create_app
    from tests.support.frontends import fake_container, serve_in_thread
    from tests.support.tiny_models import cached_model

    root = Path(args.cache or tempfile.mkdtemp(prefix="mlxm-bench-embed-"))
    model_dir = cached_model("bert", root, hidden_size=args.hidden, num_layers=args.layers, max_position_embeddings=512)
    texts = sentences(args.batch)

    model, tokenizer = load(str(model_dir))

    def direct() -> list[list[float]]:
        inputs = tokenizer.batch_encode_plus(texts, return_tensors="mlx", padding=True, truncation=True)
        out = model(inputs["input_ids"], attention_mask=inputs["attention_mask"]).text_embeds
        mx.eval(out)
        return out.tolist()

    uow = InMemoryUnitOfWork()
    with uow:
        uow.models.add(Model("bench-bert", model_type=ModelType.EMBEDDINGS, local_path=str(model_dir)))
        uow.commit()
    runtime = MlxRuntime(max_embedding_batch=args.batch)
    pool = ModelPool(runtime, SystemClock(), PoolLimits(max_models=1))
    service = InferenceService(lambda: uow, EmbeddedCatalogProvider(), pool, runtime, SystemClock())

    def in_process() -> list[list[float]]:
        return service.embed("bench-bert", texts).vectors

    container, fake_uow = fake_container(Path(tempfile.mkdtemp(prefix="mlxm-bench-home-")))
    from dependency_injector import providers

    for name, value in (("model_runtime", runtime), ("model_pool", pool), ("inference_service", service)):
        getattr(container, name).override(providers.Object(value))

    scenarios = {"(a) mlx-embeddings directly": direct, "(b) mlxm InferenceService.embed": in_process}
    times: dict[str, list[float]] = {name: [] for name in [*scenarios, "(c) mlxm HTTP + openai SDK"]}
    with serve_in_thread(create_app(container)) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0, timeout=120)

        def over_http() -> list[list[float]]:
            return [d.embedding for d in client.embeddings.create(model="bench-bert", input=texts).data]

        scenarios["(c) mlxm HTTP + openai SDK"] = over_http
        results = {name: fn() for name, fn in scenarios.items()}  # warm-up (load, compile) + outputs
        reference = np.array(results["(a) mlx-embeddings directly"])
        for name, vectors in results.items():
            diff = float(np.abs(np.array(vectors) - reference).max())
            print(f"{name:34s} max |vector - (a)| = {diff:.2e}")
        for _ in range(args.rounds):
            for name, fn in scenarios.items():
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
        pool.shutdown()

    print(f"\nrandom-weight BERT hidden {args.hidden} x {args.layers} layers, batch {args.batch}, "
          f"{args.rounds} rounds (median)")
    rates = {}
    for name, samples in times.items():
        median = statistics.median(samples)
        rates[name] = args.batch / median
        print(f"{name:34s} {rates[name]:9.1f} inputs/s   ({median * 1000:.1f} ms per batch)")
    base = rates["(a) mlx-embeddings directly"]
    print(f"\n(b)/(a) = {rates['(b) mlxm InferenceService.embed'] / base:.3f}")
    ratio = rates["(c) mlxm HTTP + openai SDK"] / base
    print(f"(c)/(a) = {ratio:.3f}   target >= 0.9: {'met' if ratio >= 0.9 else 'NOT met'}")


if __name__ == "__main__":
    main()
