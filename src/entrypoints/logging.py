"""structlog configuration: console lines by default, JSON with `MLX_MANAGER_LOG_FORMAT=json`.

Request-scoped values (the request id) live in structlog's contextvars, so every log line
written while a request is served carries them, in any module, without passing a logger.
"""

from __future__ import annotations

import logging
import re
import sys

import structlog

_configured: tuple[str, str] | None = None


def configure_logging(log_format: str = "console", level: str = "info", stream=None) -> None:
    """Configure structlog and the stdlib root logger (uvicorn logs through it) once per format."""
    global _configured
    key = (log_format, level)
    if _configured == key and stream is None:
        return
    numeric_level = logging.getLevelName(level.upper()) if isinstance(level, str) else level
    if not isinstance(numeric_level, int):
        numeric_level = logging.INFO
    shared = [
        redact_secrets,
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer = (
        structlog.processors.JSONRenderer()
        if log_format == "json"
        # A plain traceback: the rich default prints every frame's locals (1000+ lines for one 500).
        else structlog.dev.ConsoleRenderer(colors=(stream or sys.stderr).isatty(),
                                           exception_formatter=structlog.dev.plain_traceback)
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *( [structlog.processors.format_exc_info] if log_format == "json" else [] ),
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    handler.addFilter(RepeatThrottle())
    root = logging.getLogger()
    for existing in list(root.handlers):
        if getattr(existing, "_mlxm", False):
            root.removeHandler(existing)
    handler._mlxm = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(numeric_level)
    # uvicorn's own loggers propagate to the root handler instead of printing twice.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uv = logging.getLogger(name)
        uv.handlers = []
        uv.propagate = True
    # The request-id middleware writes one access line per request with the id; uvicorn's would lack it.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    # Migration chatter ("Context impl SQLiteImpl") at every start is noise; warnings still show.
    logging.getLogger("alembic").setLevel(max(numeric_level, logging.WARNING))
    _configured = key if stream is None else None


# Things that look like credentials, wherever they appear in a log line (a path such as
# DELETE /api/keys/<raw key>, a query string, a URL logged by httpx): mlxm keys keep their listed
# prefix (mlxm- + 8 characters, shown by `mlxm keys list`), others keep only their kind.
_SECRET_PATTERNS = (
    (re.compile(r"(mlxm-[A-Za-z0-9_-]{8})[A-Za-z0-9_-]{8,}"), r"\1...[redacted]"),
    (re.compile(r"\b(sk-(?:ant-)?)[A-Za-z0-9_-]{12,}"), r"\1...[redacted]"),
    (re.compile(r"\b(hf_)[A-Za-z0-9]{12,}"), r"\1...[redacted]"),
    (re.compile(r"(?i)\b(bearer\s+)[^\s\"',]{8,}"), r"\1...[redacted]"),
    (re.compile(r"(?i)([?&](?:key|api_key|token|access_token|password)=)[^&\s\"']+"), r"\1[redacted]"),
)


def redact(text: str) -> str:
    if not isinstance(text, str):
        return text
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact_secrets(_logger, _method, event_dict: dict) -> dict:
    """structlog processor: redact key-like strings in every top-level string value (and the event)."""
    for name, value in event_dict.items():
        if isinstance(value, str):
            event_dict[name] = redact(value)
    return event_dict


class RepeatThrottle(logging.Filter):
    """Warnings and errors that repeat (same logger, same message) pass at most `burst` times per
    `window` seconds; the next one that passes says how many were dropped. Under a connection flood
    asyncio and uvicorn log the same accept error thousands of times a second (16 MB in 20 s)."""

    def __init__(self, burst: int = 5, window: float = 10.0) -> None:
        super().__init__()
        self.burst, self.window = burst, window
        self._seen: dict[tuple, list] = {}  # key -> [window start, passed, dropped]

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        import time

        message = record.msg.get("event") if isinstance(record.msg, dict) else record.msg
        exc = record.exc_info[1] if record.exc_info else None
        key = (record.name, str(message)[:200], type(exc).__name__, getattr(exc, "errno", None))
        now = time.monotonic()
        state = self._seen.get(key)
        if state is None or now - state[0] >= self.window:
            dropped = state[2] if state else 0
            if len(self._seen) > 1000:  # bounded memory under any mix of messages
                self._seen.clear()
            self._seen[key] = [now, 1, 0]
            if dropped:
                note = f" [{dropped} similar messages suppressed]"
                if isinstance(record.msg, dict):
                    record.msg = {**record.msg, "suppressed": dropped}
                else:
                    record.msg = f"{record.msg}{note}"
            return True
        if state[1] < self.burst:
            state[1] += 1
            return True
        state[2] += 1
        return False


def bind_request_id(request_id: str) -> None:
    structlog.contextvars.bind_contextvars(request_id=request_id)


def clear_request_context() -> None:
    structlog.contextvars.clear_contextvars()
