"""Vision-model batching: N concurrent requests through mlxm's vision engine, batched vs one at a time.

    .venv/bin/python bench/vision_batching.py [--requests 8] [--tokens 64] [--rounds 3]

Builds the tiny random-weight Qwen2-VL of the tests (tests/support/tiny_model_types.py) offline and
sends `--requests` requests at once (half with an image, half text-only), greedy, EOS forbidden so each
makes exactly `--tokens` tokens:

  (a) batching off (`enable_batching=False`): the engine serves them one at a time, in order
      (the baseline: what the vision engine did before it batched)
  (b) batching on: mlx-vlm's `BatchGenerator` decodes them together

and prints generated tokens/s for each, the ratio (b)/(a), the engine's decode steps, and whether every
request's text is the same in (a) and (b). Rounds alternate (a), (b); medians are reported. The model is
tiny, so per-step overhead dominates; on a real model the ratio differs (measure it there).
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cache", help="where to keep the built model (default: a temp dir)")
    args = parser.parse_args()

    from PIL import Image

    from adapters.mlx.runtime import MlxRuntime
    from application.inference.ports import ChatMessage, GenerationRequest, ImageInput
    from domain.enums import ModelType
    from domain.profiles.params import InferenceParams
    from tests.support.tiny_models import cached_model, no_eos_logits_processor

    cache = Path(args.cache) if args.cache else Path(tempfile.mkdtemp(prefix="mlxm-bench-vlm-"))
    folder = cached_model("qwen2_vl", cache)

    def png(color) -> bytes:
        buffer = io.BytesIO()
        Image.new("RGB", (40, 30), color).save(buffer, format="PNG")
        return buffer.getvalue()

    messages = []
    for i in range(args.requests):
        text = f"request {i}: describe it"
        if i % 2 == 0:
            messages.append((ChatMessage("user", text, images=(ImageInput(png((30 * i % 255, 90, 200))),)),))
        else:
            messages.append((ChatMessage("user", text),))

    def run_all(runtime, model) -> tuple[float, list[str]]:
        eos = model.handle.processor.tokenizer.stopping_criteria.eos_token_ids
        streams = []
        for m in messages:
            stream = runtime.generate(model, GenerationRequest(
                InferenceParams(temperature=0.0, max_tokens=args.tokens), messages=m))
            stream.job.logits_processors.append(no_eos_logits_processor(eos))
            streams.append(stream)
        texts: list[str] = [""] * len(streams)

        def consume(index):
            texts[index] = "".join(c.text for c in streams[index])

        threads = [threading.Thread(target=consume, args=(i,)) for i in range(len(streams))]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return time.perf_counter() - start, texts

    runtimes = {"a": MlxRuntime(enable_batching=False), "b": MlxRuntime(max_batch_size=args.requests)}
    models = {k: r.load(f"bench-vlm-{k}", folder, ModelType.VISION) for k, r in runtimes.items()}
    for key in ("a", "b"):  # warm-up (first-call compilation, allocator)
        run_all(runtimes[key], models[key])
    steps_before = {k: m.handle.engine.decode_steps for k, m in models.items()}
    times: dict[str, list[float]] = {"a": [], "b": []}
    outputs: dict[str, list[str]] = {}
    for _ in range(args.rounds):
        for key in ("a", "b"):
            elapsed, texts = run_all(runtimes[key], models[key])
            times[key].append(elapsed)
            outputs[key] = texts
    total_tokens = args.requests * args.tokens
    rate = {k: total_tokens / statistics.median(v) for k, v in times.items()}
    steps = {k: (m.handle.engine.decode_steps - steps_before[k]) // args.rounds for k, m in models.items()}
    print(f"tiny Qwen2-VL, {args.requests} concurrent requests ({(args.requests + 1) // 2} with an image), "
          f"{args.tokens} tokens each, {args.rounds} rounds (median)")
    print(f"(a) one at a time (batching off)   {rate['a']:8.1f} tokens/s   {steps['a']} decode steps per round")
    print(f"(b) batched (mlx-vlm BatchGenerator) {rate['b']:6.1f} tokens/s   {steps['b']} decode steps per round, "
          f"up to {models['b'].handle.engine.max_rows_per_step} rows per step")
    print(f"(b)/(a) = {rate['b'] / rate['a']:.2f}")
    print(f"same text for every request in (a) and (b): {outputs['a'] == outputs['b']}")
    for key, runtime in runtimes.items():
        runtime.unload(models[key])


if __name__ == "__main__":
    main()
