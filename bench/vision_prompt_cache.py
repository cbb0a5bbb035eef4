"""Vision-model prompt cache (mlx-vlm's APC): time to first token of a conversation's next turn, cache off vs on.

    .venv/bin/python bench/vision_prompt_cache.py [--system-words 450] [--rounds 5]

Builds the tiny random-weight Qwen2-VL of the tests (tests/support/tiny_model_types.py) offline. Each round
is a conversation: a long system prompt (different every round), then a user turn with an image; the
measured request is its second turn (the first turn's prompt, its answer, a new question):

  (a) cache off (`prompt_cache_entries=0`): the whole second turn is prefilled (the baseline: what the
      vision engine did before)
  (b) cache on: the first turn ran before (not timed), so the second turn starts from its cached prefix

and prints the median time to first token of each, the ratio (a)/(b), the prompt and cached token counts,
and whether (a) and (b) gave the same text. The model is tiny, so fixed per-request costs (the image
processor, the vision tower, which both still run) weigh more than on a real model; measure it there.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--system-words", type=int, default=450, help="length of the shared system prompt")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cache", help="where to keep the built model (default: a temp dir)")
    args = parser.parse_args()

    from PIL import Image

    from adapters.mlx.runtime import MlxRuntime
    from application.inference.ports import ChatMessage, GenerationRequest, ImageInput
    from domain.enums import ModelType
    from domain.profiles.params import InferenceParams
    from tests.support.tiny_models import cached_model

    folder = cached_model("qwen2_vl", Path(args.cache) if args.cache else Path(tempfile.mkdtemp(prefix="mlxm-bench-")))
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 40, 40)).save(buffer, format="PNG")
    image = ImageInput(buffer.getvalue())
    params = InferenceParams(temperature=0.0, max_tokens=8)

    def conversation(round_: int):
        system = ChatMessage("system", f"round {round_}. " + " ".join(f"fact{i % 97}" for i in range(args.system_words)))
        first = (system, ChatMessage("user", "what is in the picture?", images=(image,)))
        return first, first + (ChatMessage("assistant", "a red square"), ChatMessage("user", "and its colour?"))

    def first_token(runtime, model, messages):
        """(seconds to the first chunk, the whole text, the last chunk)."""
        start = time.perf_counter()
        stream = iter(runtime.generate(model, GenerationRequest(params, messages=messages)))
        chunks = [next(stream)]
        elapsed = time.perf_counter() - start
        chunks.extend(stream)
        return elapsed, "".join(c.text for c in chunks), chunks[-1]

    runtimes = {"a": MlxRuntime(prompt_cache_entries=0), "b": MlxRuntime()}
    models = {k: r.load(f"bench-vlm-{k}", folder, ModelType.VISION) for k, r in runtimes.items()}
    for key in ("a", "b"):  # warm-up (first-call compilation, allocator)
        first_token(runtimes[key], models[key], conversation(-1)[1])
    times: dict[str, list[float]] = {"a": [], "b": []}
    same, last = True, {}
    for round_ in range(args.rounds):
        first, second = conversation(round_)
        first_token(runtimes["b"], models["b"], first)  # (b) caches the first turn's prompt
        texts = {}
        for key in ("a", "b"):
            elapsed, texts[key], last[key] = first_token(runtimes[key], models[key], second)
            times[key].append(elapsed)
        same = same and texts["a"] == texts["b"]
    ttft = {k: statistics.median(v) for k, v in times.items()}
    print(f"tiny Qwen2-VL, second turn of an image conversation: {last['a'].prompt_tokens} prompt tokens, "
          f"{args.rounds} rounds (median time to first token)")
    print(f"(a) cache off   {ttft['a'] * 1000:8.1f} ms   cached tokens {last['a'].cached_tokens}")
    print(f"(b) cache on    {ttft['b'] * 1000:8.1f} ms   cached tokens {last['b'].cached_tokens}")
    print(f"(a)/(b) = {ttft['a'] / ttft['b']:.2f}")
    print(f"same text in (a) and (b) every round: {same}")
    for key, runtime in runtimes.items():
        runtime.unload(models[key])


if __name__ == "__main__":
    main()
