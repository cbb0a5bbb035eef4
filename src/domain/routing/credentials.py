"""Cloud credentials: API keys of remote backends. Held encrypted; shown only masked."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from domain.enums import ApiType, BackendType
from domain.errors import InvalidParameter

DEFAULT_BASE_URLS = {
    BackendType.OPENAI: "https://api.openai.com/v1",
    BackendType.ANTHROPIC: "https://api.anthropic.com",
}


def api_type_for(backend_type: BackendType) -> ApiType:
    backend_type = BackendType(backend_type)
    if backend_type in (BackendType.ANTHROPIC, BackendType.ANTHROPIC_COMPATIBLE):
        return ApiType.ANTHROPIC
    if backend_type in (BackendType.OPENAI, BackendType.OPENAI_COMPATIBLE):
        return ApiType.OPENAI
    raise InvalidParameter("backend_type", f"{backend_type.value} is not a cloud backend")


def mask_secret(secret: str) -> str:
    """`sk-...abcd`: enough to recognise a key, never enough to use it."""
    if len(secret) < 12:
        return "***"
    return f"{secret[:3]}...{secret[-4:]}"


def header_safe_secret(secret: str) -> bool:
    """Printable ASCII without spaces: the key travels as an HTTP header value (`Authorization` /
    `x-api-key`), where anything else cannot be encoded (non-ASCII) or would split the header (CR, LF)."""
    return bool(secret) and all("!" <= ch <= "~" for ch in secret)


# httpx refuses a URL over 64 KiB when the backend is called (a 500 on every routed request); no API
# endpoint needs more than this.
MAX_BASE_URL_LENGTH = 2048


def validate_base_url(url: str | None) -> str | None:
    if url is None or url == "":
        return None
    if len(url) > MAX_BASE_URL_LENGTH:
        raise InvalidParameter("base_url", f"at most {MAX_BASE_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - ValueError for a port that is not a number in range
        usable = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:  # `http://[::1` (an unclosed IPv6 bracket), `http://host:99999`
        usable = False
    if not usable:
        raise InvalidParameter("base_url", f"must be an http(s) URL, got {url!r}")
    return url.rstrip("/")


@dataclass
class CloudCredential:
    """One credential per cloud backend type; `encrypted_api_key` is ciphertext, never the key."""

    backend_type: BackendType
    encrypted_api_key: str
    base_url: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    id: int | None = None

    def __post_init__(self) -> None:
        self.backend_type = BackendType(self.backend_type)
        api_type_for(self.backend_type)
        self.base_url = validate_base_url(self.base_url)
        if self.base_url is None and self.backend_type not in DEFAULT_BASE_URLS:
            raise InvalidParameter("base_url", f"{self.backend_type.value} needs a base_url")

    @property
    def effective_base_url(self) -> str:
        return self.base_url or DEFAULT_BASE_URLS[self.backend_type]
