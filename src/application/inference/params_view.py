"""Which value each inference parameter would get, and from which layer of the cascade.

The chat UI shows it next to its override fields: request > profile > system defaults
(`domain.profiles.params.cascade`), plus the system prompt (the request's, else the profile's).
"""

from __future__ import annotations

from dataclasses import fields

from domain.profiles.params import InferenceParams


def explain_cascade(inference, name: str, request: InferenceParams, system_prompt: str | None = None) -> dict:
    """`inference` is the InferenceService (resolve + system_params); raises as resolution does."""
    target = inference.resolve(name)
    profile = target.profile.inference if target.profile is not None else None
    layers = [("request", request), ("profile", profile), ("system", inference.system_params)]
    resolved = inference.resolve_params(target, request)
    params = {}
    for f in fields(InferenceParams):
        source = next((label for label, layer in layers
                       if layer is not None and getattr(layer, f.name) is not None), None)
        value = getattr(resolved, f.name)
        params[f.name] = {"value": list(value) if isinstance(value, tuple) else value, "source": source}
    profile_prompt = target.profile.context.system_prompt if target.profile is not None else None
    if system_prompt:
        prompt = {"value": system_prompt, "source": "request"}
    elif profile_prompt:
        prompt = {"value": profile_prompt, "source": "profile"}
    else:
        prompt = {"value": None, "source": None}
    return {
        "target": target.name,
        "model_id": target.model.model_id,
        "model_type": target.model.model_type.value if target.model.model_type else None,
        "profile": target.profile.name if target.profile is not None else None,
        "params": params,
        "system_prompt": prompt,
    }
