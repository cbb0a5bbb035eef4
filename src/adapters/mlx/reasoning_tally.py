"""Which of one choice's generated tokens are reasoning tokens, each counted once, in the part its text lands in.

The text of a token does not come out with it: the stream holds back characters that may start a stop
string, the detokenizer holds a partial UTF-8 character or a lone space until the next token, and the
output splitter holds what may start a marker. So the tally keeps, per token, where its text ends in the
choice's decoded text (from the chunk's `text` and `held_back`), and decides the token once the splitter
has decided the part of every character up to there:
- a token is reasoning if any of its characters is (thinking text, or a marker that enters or leaves the
  thinking block): a marker split over several tokens counts every one of them;
- a token with no text of its own comes out with the next token's text, and counts with it;
- at the end, the tokens whose text was cut off (a stop string) or never came out count with the part
  the output ended in.
"""

from __future__ import annotations

from collections import deque
from typing import Iterable


class ReasoningTally:
    def __init__(self) -> None:
        self.count = 0  # reasoning tokens decided so far
        self._ends: deque[list[int]] = deque()  # [offset where their text ends, tokens]: not decided yet
        self._last_end = 0
        self._carry = 0  # tokens whose text has not come out yet: it will, with a later token's
        self._emitted = 0  # characters the stream has released to the splitter
        self._decided = 0  # characters whose part the splitter has decided
        self._head_reasoning = False  # a reasoning character seen in the first undecided token's text

    def add(self, tokens: int, text: str, held_back: int) -> None:
        """A chunk: `tokens` new tokens, whose text ends `held_back` characters after the chunk's `text`."""
        self._emitted += len(text)
        end = self._emitted + held_back
        self._carry += tokens
        if self._carry and end > self._last_end:
            self._ends.append([end, self._carry])
            self._last_end, self._carry = end, 0

    def decided(self, parts: Iterable[bool]) -> None:
        """The splitter decided the next characters: True for each that is reasoning."""
        for reasoning in parts:
            self._head_reasoning = self._head_reasoning or reasoning
            self._decided += 1
            if self._ends and self._ends[0][0] <= self._decided:
                _, tokens = self._ends.popleft()
                if self._head_reasoning:
                    self.count += tokens
                self._head_reasoning = False

    def finish(self, ended_in_reasoning: bool) -> None:
        """All text is decided: what is left was cut off or never shown; it counts with where the output ended."""
        first = True
        while self._ends:
            _, tokens = self._ends.popleft()
            if ended_in_reasoning or (first and self._head_reasoning):
                self.count += tokens
            first = False
        if ended_in_reasoning:
            self.count += self._carry
        self._carry, self._head_reasoning = 0, False
