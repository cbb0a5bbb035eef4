"""Images of chat messages: remote URLs are fetched (only when allowed) before the runtime sees them.

Remote image URLs make the server send a request the client chose, so they are off by default
(`MLX_SERVER_ALLOW_REMOTE_IMAGES`); the fetcher port refuses internal addresses when they are on.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from application.errors import InvalidRequest
from application.inference.ports import ImageFetcher
from application.inference.ports import ChatMessage, ImageInput

REMOTE_OFF = ("remote image URLs are disabled on this server; send the image inline as a data: URL "
              "(or base64), or start the server with MLX_SERVER_ALLOW_REMOTE_IMAGES=true")


@dataclass(frozen=True)
class ImagePolicy:
    allow_remote: bool = False
    max_bytes: int = 20 * 1024 * 1024
    timeout_seconds: float = 10.0


class ImageResolver:
    def __init__(self, policy: ImagePolicy | None = None, fetcher: ImageFetcher | None = None) -> None:
        self.policy = policy or ImagePolicy()
        self._fetcher = fetcher

    def resolve_messages(self, messages: tuple[ChatMessage, ...]) -> tuple[ChatMessage, ...]:
        if not any(m.images for m in messages):
            return messages
        return tuple(replace(m, images=tuple(self.resolve(i) for i in m.images)) if m.images else m
                     for m in messages)

    def resolve(self, image: ImageInput) -> ImageInput:
        if image.url is None:
            if not image.data:
                raise InvalidRequest("an image is empty")
            if len(image.data) > self.policy.max_bytes:
                raise InvalidRequest(f"an image is larger than {self.policy.max_bytes} bytes")
            return image
        if not self.policy.allow_remote:
            raise InvalidRequest(REMOTE_OFF)
        if self._fetcher is None:
            raise InvalidRequest("no image fetcher is configured")
        return self._fetcher.fetch(image.url, max_bytes=self.policy.max_bytes, timeout=self.policy.timeout_seconds)


def image_count(messages: tuple[ChatMessage, ...]) -> int:
    return sum(len(m.images) for m in messages)
