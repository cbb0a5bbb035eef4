"""Two ranks vs one process: decode tokens/s of a model sharded with mx.distributed, measured in one run.

    .venv/bin/python bench/distributed.py [--tokens 48] [--rounds 3] [--hidden 512] [--layers 8]

Builds a random-weight `ministral3` (tests/support/tiny_sharded.py; the architecture mlx-lm 0.32 can shard
both ways) and measures greedy decode speed, same prompt, same max_tokens:

  (a) one process: mlxm's text runtime (`MlxTextRuntime`, what `mlxm serve` runs for a local model)
  (b) two ranks, tensor parallel: mlxm's `MlxDistributedRuntime` (`mlxm serve --hosts`), ring backend
  (c) two ranks, pipeline parallel: the same, `--pipeline`
  (d) mlx-lm alone, one process: `load` + `generate_step` (no mlxm)
  (e) mlx-lm alone, two ranks, tensor: `mlx.launch` + `sharded_load` + `generate_step` (no mlxm)

and prints the ratios (b)/(a), (c)/(a) and (e)/(d): (e)/(d) is what MLX's backend costs here, (b)/(e)
mlxm's lockstep loop (one extra all_sum per token to agree on stopping, one JSON line per token to the
server) against none. The mlxm groups stay loaded (idle: one small all_sum per 0.1 s) while (d)/(e) run.
Decode speed excludes the prefill: tokens after the first / time from the first to the last.
Rounds alternate (a)..(e) so machine noise hits all alike; medians are reported. Greedy outputs of
(a), (b), (c) are compared.

What limits it on this machine: both ranks share the same 2 CPU cores (and with every other process), and
the ring backend goes over loopback TCP. Tensor parallelism exchanges 2 all_sums per layer per token;
pipeline parallelism with one sequence keeps one rank idle while the other computes. Neither can beat one
process here; on two Macs each rank has its own cores, memory bandwidth and memory (see the README's
paper estimate).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

PROMPT = "Hello world, tell me a story about the quick brown fox."


def _worker(args: argparse.Namespace) -> None:
    """mlx-lm alone (d)/(e): no mlxm code on the path being timed."""
    import mlx.core as mx
    from mlx_lm import load
    from mlx_lm.generate import generate_step
    from mlx_lm.utils import sharded_load

    from tests.support.tiny_models import no_eos_logits_processor

    group = mx.distributed.init()
    if group.size() > 1:
        model, tokenizer = sharded_load(args.model, tensor_group=group)
    else:
        model, tokenizer = load(args.model)
    prompt = mx.array(tokenizer.encode(PROMPT))
    results = []
    for _ in range(args.rounds):
        times = []
        for token, _ in generate_step(prompt, model, max_tokens=args.tokens,
                                      logits_processors=[no_eos_logits_processor(tokenizer.eos_token_ids)]):
            int(token)
            times.append(time.perf_counter())
        results.append((len(times) - 1) / (times[-1] - times[0]))
    if group.rank() == 0:
        print("RESULT " + json.dumps(results), flush=True)


def _decode_rate(runtime, model, tokens: int) -> tuple[float, str, int]:
    from application.inference.ports import GenerationRequest
    from domain.profiles.params import InferenceParams

    request = GenerationRequest(InferenceParams(temperature=0.0, max_tokens=tokens), prompt=PROMPT)
    stamps, text, count = [], [], 0
    for chunk in runtime.generate(model, request):
        stamps.append(time.perf_counter())
        text.append(chunk.text)
        count = chunk.completion_tokens
    if count < 2:
        return 0.0, "".join(text), count
    return (count - 1) / (stamps[-1] - stamps[0]), "".join(text), count


def _mlx_lm_alone(model_dir: Path, hostfile: Path | None, args) -> list[float]:
    command = [sys.executable, __file__, "--worker", "--model", str(model_dir), "--tokens", str(args.tokens),
               "--rounds", "1"]
    if hostfile is not None:
        launcher = Path(sys.executable).with_name("mlx.launch")
        command = [str(launcher), "--hostfile", str(hostfile), "--backend", "ring", "--python", sys.executable,
                   "--", __file__, *command[2:]]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, stdin=subprocess.PIPE,
                          env={**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'src'}"})
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[7:])
    raise RuntimeError(f"mlx-lm worker failed: {done.stdout[-800:]} {done.stderr[-1500:]}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=48)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args)
        return

    from adapters.mlx.distributed.runtime import MlxDistributedRuntime
    from adapters.mlx.text import MlxTextRuntime
    from domain.enums import ModelType
    from tests.support.tiny_sharded import build_tiny_ministral3

    with tempfile.TemporaryDirectory(prefix="mlxm-bench-dist-") as tmp:
        tmp = Path(tmp)
        model_dir = build_tiny_ministral3(tmp / "model", hidden_size=args.hidden, num_layers=args.layers,
                                          intermediate_size=args.hidden * 3, heads=8, kv_heads=4)
        hostfile = tmp / "hosts.json"
        hostfile.write_text(json.dumps({"hosts": [{"ssh": "127.0.0.1", "ips": ["127.0.0.1"]}] * 2}))
        weights = sum(f.stat().st_size for f in model_dir.glob("*.safetensors"))
        print(f"== ministral3 hidden {args.hidden} x {args.layers} layers, {weights / 2**20:.1f} MiB float32; "
              f"{args.tokens} tokens greedy x {args.rounds} rounds; python {sys.version.split()[0]}, "
              f"{os.cpu_count()} cpus, load average {os.getloadavg()[0]:.1f}")

        one = MlxTextRuntime(enable_batching=False, prompt_cache_entries=0)
        tensor = MlxDistributedRuntime(hostfile, mode="tensor")
        pipeline = MlxDistributedRuntime(hostfile, mode="pipeline")
        started = time.perf_counter()
        loaded = {
            "a": (one, one.load("one", model_dir, ModelType.TEXT_GEN)),
            "b": (tensor, tensor.load("tensor", model_dir, ModelType.TEXT_GEN)),
            "c": (pipeline, pipeline.load("pipeline", model_dir, ModelType.TEXT_GEN)),
        }
        print(f"loaded in {time.perf_counter() - started:.1f} s (two rank groups started through mlx.launch)")
        rates: dict[str, list[float]] = {key: [] for key in "abcde"}
        outputs: dict[str, str] = {}
        counts: dict[str, int] = {}
        try:
            for _ in range(args.rounds):
                for key, (runtime, model) in loaded.items():
                    rate, text, count = _decode_rate(runtime, model, args.tokens)
                    rates[key].append(rate)
                    outputs[key], counts[key] = text, count
                rates["d"] += _mlx_lm_alone(model_dir, None, args)
                rates["e"] += _mlx_lm_alone(model_dir, hostfile, args)
        finally:
            for runtime, model in loaded.values():
                runtime.unload(model)

    names = {"a": "(a) mlxm, one process", "b": "(b) mlxm, 2 ranks tensor", "c": "(c) mlxm, 2 ranks pipeline",
             "d": "(d) mlx-lm alone, one process", "e": "(e) mlx-lm alone, 2 ranks tensor"}
    median = {key: statistics.median(values) for key, values in rates.items()}
    print(f"{'measurement':34s} {'tok/s (median)':>15s}   rounds")
    for key, name in names.items():
        print(f"{name:34s} {median[key]:15.1f}   {', '.join(f'{v:.1f}' for v in rates[key])}")
    print(f"ratio tensor/one-process (b)/(a):   {median['b'] / median['a']:.3f}")
    print(f"ratio pipeline/one-process (c)/(a): {median['c'] / median['a']:.3f}")
    print(f"ratio mlx-lm 2 ranks/1 (e)/(d):     {median['e'] / median['d']:.3f}   (what the backend costs here)")
    print(f"ratio mlxm/mlx-lm, 2 ranks (b)/(e): {median['b'] / median['e']:.3f}   (mlxm's lockstep loop vs none; "
          "near or above 1: the machine's noise is larger than its cost)")
    same = outputs["a"] == outputs["b"] == outputs["c"]
    print(f"greedy outputs (a) == (b) == (c): {same} ({counts['a']}, {counts['b']}, {counts['c']} tokens)")
    per_token = 2 * args.layers * args.hidden * 4
    print(f"tensor all_sum payload per token: 2 x {args.layers} layers x {args.hidden} x 4 B = {per_token / 1024:.0f} KiB "
          f"(+ 1 agree all_sum); limits here: 2 ranks on {os.cpu_count()} shared cores, loopback TCP (ring), "
          f"load average now {os.getloadavg()[0]:.1f}")
    print(json.dumps({"tok_s": median, "tokens": args.tokens, "hidden": args.hidden, "layers": args.layers}))


if __name__ == "__main__":
    main()
