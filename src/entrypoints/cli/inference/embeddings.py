"""`mlxm embed NAME TEXT... [--json]`: embeddings in the CLI process, through the same service as HTTP."""

from __future__ import annotations

import click

from entrypoints.cli.base import echo_json, get_container


@click.command("embed")
@click.argument("name")
@click.argument("texts", nargs=-1, required=True)
@click.option("--dimensions", type=click.IntRange(min=1), help="Matryoshka truncation (Matryoshka-trained models only).")
@click.option("--truncate", is_flag=True, help="Cut inputs past the model's max sequence length instead of failing.")
@click.option("--json", "as_json", is_flag=True, help="Print the vectors and token usage as JSON.")
@click.pass_context
def embed(ctx, name: str, texts: tuple[str, ...], dimensions, truncate: bool, as_json: bool) -> None:
    """Embed TEXT(s) with embeddings model NAME."""
    container = get_container(ctx)
    routed = getattr(container, "routed_inference_service", None)
    service = routed() if routed is not None else container.inference_service()
    try:
        result = service.embed(name, list(texts), dimensions=dimensions, truncate=truncate)
    finally:
        container.model_pool().shutdown()  # no engine state left behind at exit
        if routed is not None:  # store the audit row before the process exits
            from entrypoints.composition.auth_wiring import close_area

            close_area(container)
    if as_json:
        echo_json({"model": name, "data": [{"index": i, "embedding": v} for i, v in enumerate(result.vectors)],
                   "usage": {"prompt_tokens": result.prompt_tokens, "total_tokens": result.prompt_tokens}})
        return
    for text, vector in zip(texts, result.vectors):
        head = ", ".join(f"{v:.4f}" for v in vector[:4])
        click.echo(f"{len(vector)} dims  [{head}{', ...' if len(vector) > 4 else ''}]  {text[:40]}")
    click.echo(f"{result.prompt_tokens} tokens")
