"""`HfApiHubSearch`: the hub's model search through the real huggingface_hub client (`HfApi.list_models`).

`HF_ENDPOINT` and `HF_TOKEN` are read at call time and passed explicitly (huggingface_hub reads
`HF_ENDPOINT` only when imported), like the downloader does.
"""

from __future__ import annotations

from datetime import datetime, timezone

from application.catalog.hub_search import HubModel, HubQuery
from application.catalog.ports import HubSearchError
from adapters.huggingface.downloader import _env_endpoint, _env_token

_SORT = {"downloads": "downloads", "likes": "likes", "updated": "last_modified"}
# `expand` replaces the hub's default fields, so it names every field a result shows.
_EXPAND = ["downloads", "likes", "lastModified", "pipeline_tag", "library_name", "tags", "usedStorage"]


class HfApiHubSearch:
    def __init__(self, timeout: float = 15.0) -> None:
        self._timeout = timeout

    def search(self, query: HubQuery) -> list[HubModel]:
        endpoint = _env_endpoint()  # before huggingface_hub's import, which parses HF_ENDPOINT itself
        from huggingface_hub import HfApi
        from huggingface_hub.errors import HfHubHTTPError

        _check_reachable(endpoint, self._timeout)
        api = HfApi(endpoint=endpoint, token=_env_token())
        try:
            infos = list(api.list_models(
                search=query.text or None, author=query.author, pipeline_tag=query.pipeline_tag,
                sort=_SORT[query.sort], limit=query.limit, expand=_EXPAND,
            ))
        except (HfHubHTTPError, OSError, ValueError) as exc:  # httpx errors are OSError-like; wrap them all
            raise HubSearchError(_describe(exc)) from exc
        except Exception as exc:  # noqa: BLE001 - e.g. httpx.TransportError: the hub is unreachable
            if type(exc).__module__.startswith(("httpx", "huggingface_hub")):
                raise HubSearchError(_describe(exc)) from exc
            raise
        return [_model(info) for info in infos]


def _check_reachable(endpoint: str, timeout: float) -> None:
    """Fail fast when the hub cannot be reached at all.

    huggingface_hub's pagination retries a refused connection 5 times with backoff (~23 s, logging each
    try); a search that has a cache to fall back on should not wait for that. Any HTTP answer counts as
    reachable: HTTP errors are then left to the real client.
    """
    import httpx

    try:
        httpx.head(endpoint, timeout=min(timeout, 5.0))
    except httpx.TransportError as exc:
        raise HubSearchError(_describe(exc) or "the hub is unreachable") from exc


def _describe(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:300]


def _model(info) -> HubModel:
    modified = getattr(info, "last_modified", None)
    if isinstance(modified, datetime) and modified.tzinfo is None:
        modified = modified.replace(tzinfo=timezone.utc)
    size = getattr(info, "used_storage", None)
    return HubModel(
        repo_id=info.id,
        downloads=getattr(info, "downloads", None),
        likes=getattr(info, "likes", None),
        last_modified=modified if isinstance(modified, datetime) else None,
        pipeline_tag=getattr(info, "pipeline_tag", None),
        library_name=getattr(info, "library_name", None),
        size_bytes=int(size) if isinstance(size, (int, float)) else None,
        tags=tuple(getattr(info, "tags", None) or ()),
    )
