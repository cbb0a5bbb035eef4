"""uvicorn on loopback, the real openai SDK, a tiny real llama (mlx-lm): the prompt-cache entry a request leaves
is in `GET /api/pool` as soon as its answer is complete — the JSON body returned, or the stream read to [DONE] —
while the last token itself is not held back for the store. The engine used to mark a request finished when it
emitted the last token and store the entry just after, so a client's next GET /api/pool could miss it
(notes/cache-visibility.md)."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from adapters.mlx.prompt_cache import PromptCacheStore
from tests.support.served_models import openai_client, serving, tiny_chat_models

pytestmark = pytest.mark.slow

MODEL = "tiny-llama"
ROUNDS = 5  # requests per case, each read back at once
# The store is a few microseconds of bookkeeping here, so the race hardly ever showed on its own (100 rounds
# without a miss); a store that takes this long makes every round show it.
STORE_SECONDS = 0.3


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("mlxm-home-cache-stored")
    models = {MODEL: tiny_chat_models(tmp_path_factory)[MODEL]}
    # Room for every request's entry, so each one adds an entry the pool must show.
    with serving(home, models, prompt_cache_size=4 * ROUNDS + 8) as served:
        yield served


def cache_entries(url: str) -> int:
    loaded = {m["model_id"]: m for m in httpx.get(f"{url}/api/pool", timeout=30).json()["loaded"]}
    entry = loaded.get(MODEL)
    return 0 if entry is None else entry["prompt_cache"]["entries"]


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
@pytest.mark.parametrize("n", [1, 2], ids=["solo", "batched"])  # one request decodes solo; n=2 in the batch
def test_the_pool_shows_a_requests_prompt_cache_entry_as_soon_as_its_answer_is_complete(server, stream, n,
                                                                                       monkeypatch):
    url, _ = server
    client = openai_client(url)
    last_token_seen = threading.Event()  # streamed: the client has read a finish_reason
    held_back: list[bool] = []  # per store: did the last token wait for it?
    stored: list[int] = []  # stores completed
    insert = PromptCacheStore.insert

    def slow_insert(self, *args, **kwargs):
        # runs on the engine thread, after the last token is emitted
        if stream:
            held_back.append(not last_token_seen.wait(timeout=10))
        time.sleep(STORE_SECONDS)
        insert(self, *args, **kwargs)
        stored.append(1)

    monkeypatch.setattr(PromptCacheStore, "insert", slow_insert)
    for round_ in range(ROUNDS):
        last_token_seen.clear()
        before = cache_entries(url)
        # A prompt no earlier request began with: its entry is a new one, not a replacement.
        messages = [{"role": "user", "content": f"{round_} {n} {stream}: name a colour."}]
        if stream:
            finishes = []
            for event in client.chat.completions.create(model=MODEL, messages=messages, temperature=0,
                                                        max_tokens=3, n=n, stream=True):
                finishes += [c.finish_reason for c in event.choices if c.finish_reason is not None]
                if finishes:
                    last_token_seen.set()
            assert finishes == ["length"] * n
        else:
            completion = client.chat.completions.create(model=MODEL, messages=messages, temperature=0,
                                                        max_tokens=3, n=n)
            assert [c.finish_reason for c in completion.choices] == ["length"] * n
        done = len(stored)  # read before the pool: a store still running would finish during the GET
        after = cache_entries(url)
        # Every choice's entry, not just the first (with n=2 the second choice's last token waits for the first's
        # store, and both choices may leave the same tokens, one entry).
        assert done == n * (round_ + 1), f"round {round_}: the answer was complete after {done} stores"
        assert after > before, (f"round {round_}: the answer was complete but the pool showed {after} entries "
                                f"(before the request: {before})")
    assert held_back == ([False] * ROUNDS * n if stream else [])  # the client had the last token first
