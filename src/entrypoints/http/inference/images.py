"""Images in chat requests, as each protocol sends them, turned into `ImageInput`s.

- OpenAI: content parts `{"type": "image_url", "image_url": {"url": "data:image/png;base64,..."}}`
  (`image_url` may also be the URL string itself).
- Anthropic: blocks `{"type": "image", "source": {"type": "base64", "media_type", "data"}}` or
  `{"source": {"type": "url", "url"}}`.
- `/api/chat`: `images: [...]` per message, each base64 or a data: URL (as Ollama's API).

`data:` URLs and base64 are decoded here; http(s) URLs stay URLs for the inference service, which
fetches them only when the server allows remote images.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from application.errors import InvalidRequest
from application.inference.ports import ImageInput


def from_base64(data: Any, media_type: str | None, where: str) -> ImageInput:
    if not isinstance(data, str) or not data:
        raise InvalidRequest(f"{where}: image data must be a non-empty base64 string")
    try:
        raw = base64.b64decode(data.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidRequest(f"{where}: image data is not valid base64") from exc
    if not raw:
        raise InvalidRequest(f"{where}: image data is empty")
    return ImageInput(data=raw, media_type=media_type)


def from_url(url: Any, where: str) -> ImageInput:
    if not isinstance(url, str) or not url:
        raise InvalidRequest(f"{where}: an image needs a URL (data: or http(s))")
    if url.startswith("data:"):
        header, sep, payload = url[5:].partition(",")
        if not sep or not header.endswith(";base64"):
            raise InvalidRequest(f"{where}: a data: URL must be base64 (data:image/png;base64,...)")
        return from_base64(payload, header[: -len(";base64")] or None, where)
    if url.startswith(("http://", "https://")):
        return ImageInput(url=url)
    raise InvalidRequest(f"{where}: only data: and http(s) image URLs are accepted")


def openai_image(part: Any, where: str) -> ImageInput:
    """`image_url` of an OpenAI content part: an object with `url`, or the URL string."""
    value = part.get("image_url") if isinstance(part, dict) else getattr(part, "image_url", None)
    url = value.get("url") if isinstance(value, dict) else value
    return from_url(url, where)


def openai_images(content: Any) -> tuple[ImageInput, ...]:
    """The `image_url` parts of an OpenAI message's content, in order (images come before the text)."""
    if not isinstance(content, list):
        return ()
    return tuple(openai_image(part, "messages: image_url") for part in content
                 if getattr(part, "type", None) == "image_url")


def anthropic_image(block: Any, where: str) -> ImageInput:
    source = block.get("source") if isinstance(block, dict) else getattr(block, "source", None)
    if not isinstance(source, dict):
        raise InvalidRequest(f"{where}: an image block needs a source")
    kind = source.get("type")
    if kind == "base64":
        return from_base64(source.get("data"), source.get("media_type"), where)
    if kind == "url":
        return from_url(source.get("url"), where)
    raise InvalidRequest(f"{where}: image source type {kind!r} is not supported (base64 or url)")


def api_chat_image(value: Any, where: str) -> ImageInput:
    if isinstance(value, str) and value.startswith(("data:", "http://", "https://")):
        return from_url(value, where)
    return from_base64(value, None, where)
