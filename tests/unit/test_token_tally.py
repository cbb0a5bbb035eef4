"""Usage counting shared by the local `InferenceStream` and the router's `RoutedStream` (`TokenTally`)."""

from __future__ import annotations

from types import SimpleNamespace

from application.inference.ports import GenerationChunk
from application.inference.streams import InferenceStream, Target, collect
from domain.profiles.params import InferenceParams


class _Lease:
    released = 0

    def release(self) -> None:
        self.released += 1


# The vision engine ends a choice whose last text was held back (a possible stop string) with a chunk
# that carries the text and zero counts.
CHUNKS = [
    GenerationChunk("Hel", 7, 1, cached_tokens=3),
    GenerationChunk("lo", 7, 2, cached_tokens=3),
    GenerationChunk("!", 0, 0, "stop"),
]


def _stream(chunks, lease) -> InferenceStream:
    return InferenceStream(iter(chunks), lease, Target(SimpleNamespace(model_id="tiny")), InferenceParams())


def test_a_local_completion_keeps_the_counts_a_last_zero_chunk_does_not_carry():
    lease = _Lease()
    completion = collect(_stream(CHUNKS, lease))
    assert (completion.text, completion.model, completion.backend) == ("Hello!", "tiny", "local")
    assert (completion.prompt_tokens, completion.completion_tokens, completion.cached_tokens) == (7, 2, 3)
    assert completion.finish_reason == "stop"
    assert lease.released >= 1

