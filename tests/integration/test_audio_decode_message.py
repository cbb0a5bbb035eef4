"""Undecodable audio is a clean client error: no Python object reprs in the message (issue 6)."""

import pytest

from adapters.mlx.audio import read_audio
from application.errors import InvalidRequest


def test_undecodable_audio_names_the_problem_not_an_in_memory_buffer():
    with pytest.raises(InvalidRequest) as error:
        read_audio(b"this is not audio at all")
    message = str(error.value)
    assert message.startswith("cannot decode the audio") and "Format not recognised" in message
    assert "BytesIO" not in message and " at 0x" not in message
