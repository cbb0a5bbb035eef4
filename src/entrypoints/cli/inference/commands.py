"""Inference in the CLI process: run (streams to stdout), speak, transcribe."""

from __future__ import annotations

from pathlib import Path

import click

from entrypoints.cli import completion
from entrypoints.cli.base import INPUT_FILE, OUTPUT_FILE, echo_json, get_container


def _unload_models(ctx) -> None:
    """Unload what this command loaded before the process exits: an engine thread still inside
    MLX while the interpreter finalises aborts the process (exit code 134)."""
    get_container(ctx).model_pool().shutdown()


@click.command("run")
@click.argument("words", nargs=-1, required=True, metavar="[NAME] PROMPT", shell_complete=completion.complete_model)
@click.option("--temperature", type=float, help="0 = greedy.")
@click.option("--top-p", type=float)
@click.option("--max-tokens", type=int)
@click.option("--seed", type=int)
@click.option("--system", help="A system prompt (overrides the profile's).")
@click.option("--thinking/--no-thinking", default=None,
              help="Switch the model's thinking on or off (its reasoning streams, dimmed, to stderr).")
@click.option("--image", "images", multiple=True, type=INPUT_FILE,
              help="An image file for a vision model (repeatable; in order).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object at the end instead of streaming.")
@click.pass_context
def run(ctx, words: tuple[str, ...], temperature, top_p, max_tokens, seed, system, thinking, images,
        as_json: bool) -> None:
    """Chat once with NAME (profile, model id, alias or repo id), streaming the reply.

    Without NAME, the selected model answers (`mlxm select`)."""
    if len(words) > 2:
        raise click.UsageError("give [NAME] PROMPT: quote a prompt that has spaces")
    name, prompt = (words if len(words) == 2 else ("default", words[0]))
    from application.inference.ports import ChatMessage, GenerationRequest, ImageInput
    from domain.profiles.params import InferenceParams

    params = InferenceParams(temperature=temperature, top_p=top_p, max_tokens=max_tokens, seed=seed)
    attached = tuple(ImageInput(data=Path(image).read_bytes()) for image in images)
    messages = ((ChatMessage("system", system),) if system else ()) + (ChatMessage("user", prompt, images=attached),)
    from application.inference.service import open_generation

    container = get_container(ctx)
    # The same routed service as HTTP: a backend mapping sends NAME to its cloud backend, and it is audited.
    routed = getattr(container, "routed_inference_service", None)
    service = routed() if routed is not None else container.inference_service()
    stream = open_generation(service, name, GenerationRequest(params=params, messages=messages,
                                                              enable_thinking=thinking))
    pieces, reasoning, last = [], [], None
    try:
        for chunk in stream:
            last = chunk
            if as_json:
                pieces.append(chunk.text)
                reasoning.append(chunk.reasoning)
                continue
            if chunk.reasoning:  # stderr, dimmed: stdout stays the answer alone
                click.echo(click.style(chunk.reasoning, dim=True), nl=False, err=True)
            if chunk.text:
                click.echo(chunk.text, nl=False)
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()
        _unload_models(ctx)
        if routed is not None:  # store the audit row before the process exits
            from entrypoints.composition.auth_wiring import close_area

            close_area(container)
    if as_json:
        echo_json({
            "model": name,
            "text": "".join(pieces),
            "reasoning": "".join(reasoning) or None,
            "finish_reason": (last.finish_reason if last else None) or "stop",
            "usage": {
                "prompt_tokens": last.prompt_tokens if last else 0,
                "completion_tokens": last.completion_tokens if last else 0,
            },
        })
    else:
        click.echo()


@click.command("speak")
@click.argument("name", shell_complete=completion.complete_model)
@click.argument("text")
@click.option("-o", "--output", "output", required=True, type=OUTPUT_FILE,
              help="Where to write the WAV file.")
@click.option("--voice")
@click.option("--speed", type=float)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def speak(ctx, name: str, text: str, output: str, voice, speed, as_json: bool) -> None:
    """Text to speech with audio model NAME, written as WAV."""
    from domain.profiles.params import AudioDefaults

    try:
        wav = get_container(ctx).inference_service().speak(name, text, AudioDefaults(voice=voice, speed=speed))
    finally:
        _unload_models(ctx)
    path = Path(output)
    if path.exists() and not path.is_file():
        # /dev/stdout, a FIFO: written into as a shell redirect would. A temporary file renamed over it would
        # replace the device itself (`-o /dev/null` as root: /dev/null became a WAV file).
        with open(path, "wb") as stream:
            stream.write(wav)
    else:
        tmp = path.with_name(f".{path.name}.partial")
        tmp.write_bytes(wav)
        tmp.replace(path)  # never leave a half-written file under the requested name
    if as_json:
        echo_json({"model": name, "output": str(path), "bytes": len(wav)})
        return
    click.echo(f"Wrote {path} ({len(wav)} bytes)")


@click.command("transcribe")
@click.argument("name", shell_complete=completion.complete_model)
@click.argument("file", type=INPUT_FILE)
@click.option("--language", help="Spoken language (default: detect or the profile's).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (text, language, segments).")
@click.pass_context
def transcribe(ctx, name: str, file: str, language, as_json: bool) -> None:
    """Speech to text with audio model NAME."""
    try:
        result = get_container(ctx).inference_service().transcribe(name, Path(file).read_bytes(), language)
    finally:
        _unload_models(ctx)
    if as_json:
        echo_json({"text": result.text, "language": result.language, "duration": result.duration,
                   "segments": list(result.segments)})
        return
    click.echo(result.text)
