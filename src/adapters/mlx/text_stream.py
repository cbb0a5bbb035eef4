"""`TextStream`: the chunks of one text request (all its n choices), read from the engine's queue.

- Tokens are detokenized per choice; stop strings are matched on the decoded text, across chunk
  boundaries, and are not emitted (a hit ends that choice only).
- One chunk per token, even when its text is held back (a partial UTF-8 sequence, a possible
  stop string): consumers see progress and token counts. Chunks carry their choice `index`,
  the prompt tokens served from the prompt cache, and, when asked for, the token's logprobs.
- The requests are submitted on the first `next()`, so an iterator never read computes nothing;
  `close()` (or dropping it) cancels every choice in the engine.
"""

from __future__ import annotations

from typing import Any, Sequence

from adapters.mlx.engine import EngineRequest, on_engine_thread
from application.inference.ports import GenerationChunk, TokenLogprob

# How long `close()` waits for the engine to drop the requests (normally one step).
CLOSE_ACK_SECONDS = 5.0


_BYTE_DECODER: dict[str, int] | None = None


def _byte_decoder() -> dict[str, int]:
    """GPT-2's byte-level BPE alphabet, reversed (printable stand-in character -> byte)."""
    global _BYTE_DECODER
    if _BYTE_DECODER is None:
        visible = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
        chars = visible[:]
        extra = 0
        for b in range(256):
            if b not in visible:
                visible.append(b)
                chars.append(256 + extra)
                extra += 1
        _BYTE_DECODER = {chr(c): b for b, c in zip(visible, chars)}
    return _BYTE_DECODER


class _Choice:
    def __init__(self, request: EngineRequest, detokenizer: Any) -> None:
        self.request = request
        self.detokenizer = detokenizer
        self.pending = ""
        self.completion_tokens = 0
        self.logprobs: list[TokenLogprob] = []
        self.done = False


class TextStream:
    """Iterator of `GenerationChunk`s for one request; `close()` cancels it in the engine."""

    def __init__(self, handle: Any, requests: EngineRequest | Sequence[EngineRequest], stop: tuple[str, ...]) -> None:
        if isinstance(requests, EngineRequest):
            requests = [requests]
        self._handle = handle
        self.requests = list(requests)
        self.request = self.requests[0]
        self._events = self.request.events  # shared by every choice (see MlxTextRuntime.generate)
        self._stop = stop
        self._holdback = max((len(s) for s in stop), default=1) - 1
        self._choices = [_Choice(r, handle.tokenizer.detokenizer) for r in self.requests]
        self._submitted = False
        self._done = False

    def __iter__(self) -> "TextStream":
        return self

    def __next__(self) -> GenerationChunk:
        if not self._submitted and not self._done:
            self._handle.engine.submit_all(self.requests)  # together: the choices share one prefill
            self._submitted = True
        while True:
            if self._done or all(c.done for c in self._choices):
                self._done = True
                raise StopIteration
            event = self._events.get()
            if isinstance(event, BaseException):
                self._done = True
                self._cancel()
                raise event
            chunk = self._on_token(*event)
            if chunk is not None:
                return chunk

    def _on_token(self, index: int, token: int, finish: str | None, chosen: float | None, top) -> GenerationChunk | None:
        choice = self._choices[index]
        if choice.done:  # a stop string ended it; the engine may have produced one more token
            return None
        detokenizer = choice.detokenizer
        if finish != "stop":  # "stop" means EOS: not part of the text
            detokenizer.add_token(token)
            choice.completion_tokens += 1
            if chosen is not None:
                choice.logprobs.append(self._logprob(token, chosen, top))
        if finish is not None:
            detokenizer.finalize()
        choice.pending += detokenizer.last_segment
        if self._stop:
            hit = self._first_stop(choice.pending)
            if hit is not None:
                text = choice.pending[:hit]
                choice.pending = ""
                choice.done = True
                self._handle.engine.cancel(choice.request)
                if all(c.done for c in self._choices):
                    self.close()
                return self._chunk(choice, text, "stop")
        if finish is not None:
            text, choice.pending = choice.pending, ""
            choice.done = True
            return self._chunk(choice, text, finish)
        cut = max(len(choice.pending) - self._holdback, 0)
        text, choice.pending = choice.pending[:cut], choice.pending[cut:]
        return self._chunk(choice, text, None)

    def _chunk(self, choice: _Choice, text: str, finish: str | None) -> GenerationChunk:
        request = choice.request
        logprobs = None
        if request.top_logprobs is not None:
            logprobs, choice.logprobs = tuple(choice.logprobs), []
        return GenerationChunk(text, len(request.prompt), choice.completion_tokens, finish,
                               cached_tokens=request.cached_tokens, logprobs=logprobs, index=request.index,
                               held_back=len(choice.pending))

    def _logprob(self, token: int, chosen: float, top) -> TokenLogprob:
        alternatives = tuple(TokenLogprob(self._text(i), lp, self._bytes(i)) for i, lp in (top or ()))
        return TokenLogprob(self._text(token), chosen, self._bytes(token), alternatives)

    def _text(self, token: int) -> str:
        texts = self._handle.token_texts
        text = texts.get(token)
        if text is None:
            text = texts[token] = self._handle.tokenizer.decode([token])
        return text

    def _bytes(self, token: int) -> tuple[int, ...]:
        text = self._text(token)
        if "\ufffd" in text:  # part of a UTF-8 sequence: the token's own bytes, from the byte-level alphabet
            raw = self._handle.tokenizer.convert_ids_to_tokens(token)
            table = _byte_decoder()
            if isinstance(raw, str) and raw and all(ch in table for ch in raw):
                return tuple(table[ch] for ch in raw)
        return tuple(text.encode("utf-8", "surrogatepass"))

    def _first_stop(self, pending: str) -> int | None:
        hits = [i for i in (pending.find(s) for s in self._stop) if i >= 0]
        return min(hits) if hits else None

    def close(self) -> None:
        """Stop generating (a client went away).

        Waits (briefly) until the engine has dropped the requests, so that when close() returns
        no step is still computing for them: a process that exits right after (`mlxm run` whose
        stop string matched) never finalises with an engine thread inside MLX.
        """
        self._cancel()
        if self._submitted and not on_engine_thread():
            for request in self.requests:
                request.finished.wait(timeout=CLOSE_ACK_SECONDS)

    def _cancel(self) -> None:
        self._done = True
        if self._submitted:
            for request in self.requests:
                self._handle.engine.cancel(request)

    def __del__(self) -> None:
        try:
            self._cancel()  # never blocks: a finaliser may run on any thread, the engine's too
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass
