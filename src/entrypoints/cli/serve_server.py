"""How `mlxm serve` stops: a grace period for running requests, a clean second Ctrl-C, a clean exit.

uvicorn's own shutdown waits for running streams without limit on the first Ctrl-C (a long stream kept
the process up for its whole length), skips the application's shutdown on the second one (models stay
loaded, MLX threads alive), and then re-raises the captured SIGINTs, which printed KeyboardInterrupt
tracebacks. This subclass of `uvicorn.Server` instead:

1. on Ctrl-C or SIGTERM stops accepting connections and gives running requests
   `MLX_SERVER_SHUTDOWN_GRACE_SECONDS`; then it cancels them through the app's `ShutdownDrain`
   (generation stops; a started stream ends with an error event);
2. on a second Ctrl-C cancels them at once; a third exits immediately (exit code 130);
3. always runs the application's shutdown (models unloaded, audit rows flushed) and re-raises nothing.

The process then ends with `os._exit` after flushing its logs (`finish_process`): interpreter
finalisation with MLX's C++ threads and objects still around aborted the process now and then
("terminate called without an active exception", SIGABRT), after the server had already stopped
cleanly. Exit codes: 0 after a graceful stop (one Ctrl-C or SIGTERM, streams cancelled after the grace
period included), 130 when a second Ctrl-C forced it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
import time

import uvicorn

log = logging.getLogger("mlxm.serve")

CANCEL_WAIT_SECONDS = 10.0  # cancelled requests end at their next await; then the stragglers' tasks go
FORCED_EXIT_CODE = 130


class MlxmServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, *, drain, grace_seconds: float) -> None:
        super().__init__(config)
        self.drain = drain
        self.grace_seconds = grace_seconds
        self.interrupts = 0

    @property
    def exit_code(self) -> int:
        return FORCED_EXIT_CODE if self.force_exit else 0

    @contextlib.contextmanager
    def capture_signals(self):
        """uvicorn's, minus re-raising the signals afterwards (the shutdown they asked for is done)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        originals = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in originals.items():
                signal.signal(sig, handler)

    def handle_exit(self, sig, frame) -> None:
        if sig == signal.SIGINT:
            self.interrupts += 1
            if self.interrupts >= 3:  # the shutdown itself is stuck (e.g. a model that will not unload)
                finish_process(FORCED_EXIT_CODE)
            if self.interrupts == 2:
                sys.stderr.write("Stopping now: cancelling running requests (Ctrl-C again to exit at once)\n")
        super().handle_exit(sig, frame)

    async def shutdown(self, sockets=None) -> None:
        log.info("Shutting down")
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()  # idle ones close now, busy ones after their response
        await asyncio.sleep(0.1)
        if not await self._idle_within(self.grace_seconds):
            stopped = self.drain.cancel_all()
            log.info("Cancelled %d running request(s)%s", stopped,
                     " (second Ctrl-C)" if self.force_exit else f" after the {self.grace_seconds:g} s grace period")
            if not await self._idle_within(CANCEL_WAIT_SECONDS, even_if_forced=True):
                for task in list(self.server_state.tasks):
                    task.cancel()
                await self._idle_within(2.0, even_if_forced=True)
        for server in self.servers:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(server.wait_closed(), timeout=2.0)
        await self.lifespan.shutdown()  # always: unload the models, flush the audit rows

    async def _idle_within(self, seconds: float, *, even_if_forced: bool = False) -> bool:
        """True once no request runs; False after `seconds`, or at a second Ctrl-C."""
        deadline = time.monotonic() + seconds
        while self.server_state.tasks:
            if (self.force_exit and not even_if_forced) or time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.05)
        return True


def finish_process(code: int) -> None:
    """End the process without interpreter finalisation, once the server's own shutdown is done."""
    engine_threads = sys.modules.get("adapters.mlx.engine_threads")
    if engine_threads is not None:  # engines the pool did not close (a shutdown cut short)
        with contextlib.suppress(Exception):
            engine_threads._close_live_engines()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)
