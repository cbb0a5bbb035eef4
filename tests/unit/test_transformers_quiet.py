"""transformers' log is quiet only while mlxm calls into it, and overlapping callers (server threads) leave it as
it was; mlxm's own loggers are never touched."""

from __future__ import annotations

import logging

from adapters.mlx.transformers_quiet import import_transformers_logging, transformers_quiet


def test_overlapping_callers_restore_transformers_level_only_after_the_last():
    hf_logging = import_transformers_logging()
    before = hf_logging.get_verbosity()
    first, second = transformers_quiet(), transformers_quiet()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)  # the other caller is still inside: still quiet
    assert hf_logging.get_verbosity() == logging.ERROR
    second.__exit__(None, None, None)
    assert hf_logging.get_verbosity() == before


def test_mlxms_own_warnings_still_show_while_transformers_is_quiet(caplog):
    hf_logging = import_transformers_logging()
    with caplog.at_level(logging.WARNING), transformers_quiet():
        logging.getLogger("adapters.mlx.vision").warning("mlxm's own message")
        assert not hf_logging.get_logger("transformers.processing_utils").isEnabledFor(logging.WARNING)
    assert "mlxm's own message" in caplog.text
