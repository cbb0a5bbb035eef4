"""Audit-log overhead on streaming: does recording each request slow the stream?

    .venv/bin/python bench/audit.py [--requests 300] [--chunks 64]

Streams `--requests` requests of `--chunks` chunks each through the real InferenceRouter (a fake
local generator, so only routing + auditing is measured), on a real SQLite database, with:

  (a) no audit (a sink that drops rows)            - the baseline
  (b) the server's ThreadedAuditWriter (batched, background thread)
  (c) a synchronous write per request (ImmediateAuditSink), for comparison

It prints the median time from request start to the last chunk, and the ratios (b)/(a) and (c)/(a).
Target: (b)/(a) close to 1.0 (the stream never waits for the database). Runs alternate a, b, c.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from adapters.system.clock import SystemClock  # noqa: E402
from adapters.fernet.secrets import FernetSecretCipher  # noqa: E402
from adapters.sqlalchemy.engine import make_engine, make_session_factory  # noqa: E402
from adapters.sqlalchemy.migrate import upgrade_database  # noqa: E402
from adapters.sqlalchemy.unit_of_work import SqlAlchemyUnitOfWork  # noqa: E402
from adapters.threads.audit_writer import ThreadedAuditWriter  # noqa: E402
from application.audit.service import AuditService, DiscardingAuditSink, ImmediateAuditSink  # noqa: E402
from application.routing.backend_mappings import BackendMappingService  # noqa: E402
from application.routing.credentials import CredentialService  # noqa: E402
from application.inference.ports import ChatMessage, GenerationChunk, GenerationRequest  # noqa: E402
from application.routing.service import InferenceRouter  # noqa: E402
from domain.audit.model import AuditQuery  # noqa: E402
from domain.profiles.params import InferenceParams  # noqa: E402


class FakeLocal:
    def __init__(self, chunks: int) -> None:
        self.chunks = chunks

    def generate(self, model, request):
        for n in range(1, self.chunks + 1):
            yield GenerationChunk("tok ", prompt_tokens=8, completion_tokens=n,
                                  finish_reason="length" if n == self.chunks else None)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--chunks", type=int, default=64)
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="mlxm-bench-audit-"))
    url = f"sqlite:///{home / 'mlxm.db'}"
    upgrade_database(url)
    sessions = make_session_factory(make_engine(url))
    uow = lambda: SqlAlchemyUnitOfWork(sessions)  # noqa: E731
    clock = SystemClock()
    audit = AuditService(uow, clock)
    mappings = BackendMappingService(uow)
    credentials = CredentialService(uow, FernetSecretCipher(home=home), clock)
    writer = ThreadedAuditWriter(audit.write, cleanup=audit.cleanup)
    sinks = {"(a) no audit": DiscardingAuditSink(), "(b) background writer": writer,
             "(c) synchronous write": ImmediateAuditSink(audit)}
    routers = {name: InferenceRouter(mappings, credentials, lambda e: None, FakeLocal(args.chunks), sink, clock)
               for name, sink in sinks.items()}
    request = GenerationRequest(params=InferenceParams(max_tokens=args.chunks), messages=(ChatMessage("user", "hi"),))
    # Warm up (engine, mappings query, writer thread).
    for router in routers.values():
        for _ in range(5):
            list(router.generate("bench-model", request))
    times: dict[str, list[float]] = {name: [] for name in routers}
    for _ in range(args.requests):
        for name, router in routers.items():
            started = time.perf_counter()
            for _chunk in router.generate("bench-model", request, endpoint="/bench"):
                pass
            times[name].append(time.perf_counter() - started)
    writer.close()
    rows = audit.query(AuditQuery(model="bench-model", limit=1)).total

    baseline = statistics.median(times["(a) no audit"])
    print(f"{args.requests} requests x {args.chunks} chunks each, SQLite at {home}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:24s} median {median * 1000:8.3f} ms/request   p95 "
              f"{sorted(values)[int(len(values) * 0.95)] * 1000:8.3f} ms   ratio to (a) {median / baseline:5.2f}")
    print(f"audit rows stored: {rows} (expected {2 * (args.requests + 5)} from (b) and (c))")


if __name__ == "__main__":
    main()
