"""Scripted tiny models: real mlx-lm llama weights whose greedy output is a script the test wrote.

Random weights never call a tool or think, so tests of tool calls and reasoning build a model
that says exactly what they need (see /work/shared/notes/scripted-models.md):

- a word-level vocabulary holding the chat template's words, every piece of every script and the
  printable ASCII characters, in the byte-level alphabet (a `ByteLevel` decoder, as GPT-2/Qwen
  tokenizers have: mlx-lm's BPE detokenizer and llguidance read it); pieces are joined without
  spaces, so a marker such as `<tool_call>` may also be spelled as two pieces (`<tool_c` + `all>`):
  the text is what counts, which lets one script repeat a marker (parallel calls);
- one llama layer that adds nothing (`o_proj` and `down_proj` are zero) over identity embeddings, so
  the last hidden state is the current token; `lm_head` maps each token to its successor in a script
  (a bigram chain) and everything else to `</s>`.

Which script runs is chosen by the chat template: the generation prompt ends with a *trigger* word
`<name>:`, picked from the last message: `answer` when it is a tool result, else the first script
name that appears in the last message's text (`default` when none does). With `enable_thinking=False`
the trigger gets `/nothink` appended (`think/nothink:`), so a test sees that the switch reached the
template. The template renders the offered tools (`tools: get_weather ...`) and the history's tool
calls and results, and carries the `<tool_call>` / `tool_call.name` markers from which mlx-lm infers
the JSON (Hermes/Qwen) tool parser. A vocabulary with `<think>` and `</think>` makes mlx-lm treat
the model as a thinking model.
"""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Mapping, Sequence

SPECIAL = ["<unk>", "<s>", "</s>"]
TEMPLATE_WORDS = ["<|system|>", "<|user|>", "<|assistant|>", "<|tool|>", "tools:", "<tool_call>", "</tool_call>"]

# The scripts the tool-calling e2e tests use (one model serves them all).
TOOL_SCRIPTS: dict[str, list[str]] = {
    "weather": ['<tool_call>', '{"name":"get_weather",', '"arguments":{"city":"Paris"}}', '</tool_call>'],
    # Two blocks: each marker spelled from different pieces, since a bigram chain cannot repeat a token.
    "parallel": ['<tool_c', 'all>', '{"name":"get_weather","arguments":{"city":"Paris"}}', '</tool_', 'call>',
                 '<tool_ca', 'll>', '{"name":"get_time","arguments":{"city":"Tokyo"}}', '</t', 'ool_call>'],
    "broken": ['Let me check.', '<to', 'ol_call>', '{"name": oops', '</too', 'l_call>'],
    "answer": ['It is ', 'sunny ', 'in Paris, ', '22 C.'],
    "think": ['<think>', 'The sky ', 'scatters ', 'blue light.', '</think>', 'Rayleigh ', 'scattering.'],
    "think/nothink": ['Blue, ', 'because of ', 'Rayleigh.'],
    "default": ['Hello ', 'from ', 'a script.'],
}


def chat_template(triggers: Sequence[str]) -> str:
    keywords = [t for t in triggers if t not in ("answer", "default") and "/" not in t]
    choose = "".join(
        f"{{%- elif '{word}' in (last.content or '')|lower -%}}{{%- set trigger = '{word}' -%}}" for word in keywords
    )
    # Whitespace is written as `' '` expressions: `-%}` strips the template's own spaces.
    return (
        "{%- if tools -%}{{ '<|system|> tools: ' }}{%- for t in tools -%}{{ (t.function or t).name ~ ' ' }}"
        "{%- endfor -%}{%- endif -%}"
        "{%- for m in messages -%}"
        "{%- if m.role == 'assistant' and m.tool_calls -%}{{ ' <|assistant|>' }}"
        "{%- for tool_call in m.tool_calls -%}"
        "{%- if tool_call.function -%}{%- set tool_call = tool_call.function -%}{%- endif -%}"
        "{{ ' <tool_call> ' ~ tool_call.name ~ ' ' ~ (tool_call.arguments | tojson) ~ ' </tool_call>' }}"
        "{%- endfor -%}"
        "{%- else -%}{{ ' <|' ~ m.role ~ '|> ' ~ (m.content or '') }}"
        "{%- endif -%}"
        "{%- endfor -%}"
        "{%- if add_generation_prompt -%}"
        "{%- set last = messages[-1] -%}"
        "{%- if last.role == 'tool' -%}{%- set trigger = 'answer' -%}"
        f"{choose}"
        "{%- else -%}{%- set trigger = 'default' -%}{%- endif -%}"
        "{%- if enable_thinking is defined and enable_thinking is false -%}{%- set trigger = trigger + '/nothink' -%}"
        "{%- endif -%}"
        "{{ ' ' ~ trigger ~ ':' }}"
        "{%- endif -%}"
    )


def build_scripted_model(dest: Path, scripts: Mapping[str, Sequence[str]] = TOOL_SCRIPTS, *,
                         thinking: bool = True, template: str | None = None, loops: Sequence[str] = ()) -> Path:
    """Write the model into `dest`; load it with `mlx_lm.load(str(dest))`.

    `thinking=True` puts `<think>`/`</think>` in the vocabulary (mlx-lm's `has_thinking`).
    `template` replaces the generated chat template (e.g. one without tool markers).
    `loops` names scripts that start over after their last piece instead of ending: an endless
    generation (only `max_tokens` or a cancel stops it), for tests of stopping a running stream.
    """
    import mlx.core as mx
    from mlx.utils import tree_flatten
    from mlx_lm.models.llama import Model, ModelArgs
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    triggers = [f"{name}:" for name in scripts]
    words: list[str] = []
    extra = ["<think>", "</think>"] if thinking else []
    for word in [*SPECIAL, *TEMPLATE_WORDS, *extra, *triggers, *(p for s in scripts.values() for p in s),
                 *string.printable.strip(), " ", "\n"]:
        if word not in words:
            words.append(word)
    seen: set[str] = set()
    for name, pieces in scripts.items():
        for piece in [f"{name}:", *pieces]:
            if piece in seen:  # each token has one successor: a repeat would loop or cross scripts
                raise ValueError(f"script {name!r}: the piece {piece!r} is used twice")
            seen.add(piece)
    if len(words) % 2:  # the vocabulary size is the head dimension, and RoPE needs it even
        words.append("<pad>")
    vocab = {word: i for i, word in enumerate(words)}

    # Token strings in the byte-level alphabet (space is "Ġ"): printable ASCII maps to itself, so the
    # prompt's whitespace-split words still find their tokens.
    alphabet = _byte_alphabet()
    special = set(SPECIAL)
    stored = {(w if w in special else "".join(alphabet[b] for b in w.encode())): i for w, i in vocab.items()}
    backend = Tokenizer(models.WordLevel(vocab=stored, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    backend.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<s>", eos_token="</s>", unk_token="<unk>", pad_token="</s>",
        clean_up_tokenization_spaces=False,
    )
    tokenizer.chat_template = template if template is not None else chat_template(list(scripts))
    tokenizer.save_pretrained(str(dest))

    size = len(vocab)
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": size,
        "num_hidden_layers": 1, "intermediate_size": 8, "num_attention_heads": 1, "num_key_value_heads": 1,
        "head_dim": size, "vocab_size": size, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
        "max_position_embeddings": 4096, "tie_word_embeddings": False, "attention_bias": False,
        "mlp_bias": False, "bos_token_id": vocab["<s>"], "eos_token_id": vocab["</s>"], "torch_dtype": "float32",
    }
    (dest / "config.json").write_text(json.dumps(config, indent=2) + "\n")

    mx.random.seed(0)
    model = Model(ModelArgs.from_dict(config))
    weights = dict(tree_flatten(model.parameters()))
    eos = vocab["</s>"]
    successor = [eos] * size
    for name, pieces in scripts.items():
        chain = [vocab[f"{name}:"], *(vocab[p] for p in pieces), vocab[pieces[0]] if name in loops else eos]
        for current, following in zip(chain, chain[1:]):
            successor[current] = following
    head = [[0.0] * size for _ in range(size)]
    for token, following in enumerate(successor):
        head[following][token] = 4.0  # a wide margin: even sampling at temperature 1 follows the script
    for key in list(weights):
        if key.endswith("o_proj.weight") or key.endswith("down_proj.weight"):
            weights[key] = mx.zeros_like(weights[key])
    weights["model.embed_tokens.weight"] = mx.eye(size)
    weights["lm_head.weight"] = mx.array(head)
    mx.eval(list(weights.values()))
    mx.save_safetensors(str(dest / "model.safetensors"), weights, metadata={"format": "mlx"})
    return dest


def _byte_alphabet() -> dict[int, str]:
    """GPT-2's byte -> printable character map (what a `ByteLevel` decoder reverses)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), 256))
    chars = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    return {byte: chr(char) for byte, char in zip(printable, chars)}


def script_text(name: str, scripts: Mapping[str, Sequence[str]] = TOOL_SCRIPTS) -> str:
    """What the model says for a trigger: its pieces joined (the decoder adds no spaces)."""
    return "".join(scripts[name])
