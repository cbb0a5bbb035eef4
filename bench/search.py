"""Library search benchmark: 100,000 synthetic models in a temporary SQLite database (or any given one).

Prints p50/p95 of free-text search, of a filtered page of 50 (text + type/capability/status
filters) and of a page with filters but no text, all through the real
`SqlAlchemyModelRepository`, how long indexing took, and ratios against baselines measured in
the same run (an indexed primary-key lookup, and a LIKE scan with LIMIT 50). Targets: search
p95 <= 5 ms, filtered page p95 <= 20 ms. No thresholds are asserted: this only reports.

    .venv/bin/python bench/search.py [--models 100000] [--queries 300]
    .venv/bin/python bench/search.py --database-url sqlite --database-url temp-postgres   # side by side
    .venv/bin/python bench/search.py --database-url postgresql+psycopg://me@127.0.0.1/empty_db
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import insert, text

from adapters.sqlalchemy.engine import make_engine
from adapters.sqlalchemy.migrate import sync_sequences, upgrade_database
from adapters.sqlalchemy.search_index import rebuild_search_index
from adapters.sqlalchemy.tables import (
    AudioCapabilityRecord,
    CapabilityRecord,
    EmbeddingCapabilityRecord,
    ModelAliasRecord,
    ModelRecord,
    ModelTagRecord,
    TextGenCapabilityRecord,
    VisionCapabilityRecord,
)
from adapters.sqlalchemy.unit_of_work import sqlalchemy_uow_factory
from application.library.ports import ModelQuery
from domain.enums import DownloadStatus, ModelType
from domain.library.models import Model

FAMILIES = ["qwen", "qwen2", "qwen3", "llama", "llama3", "mistral", "mixtral", "gemma", "gemma3", "phi", "phi4",
            "deepseek", "granite", "olmo", "smollm", "falcon", "yi", "internlm", "glm", "minicpm", "starcoder",
            "codellama", "hermes", "nous", "whisper", "kokoro", "bge", "e5", "nomic", "llava", "pixtral", "idefics"]
ORGS = ["mlx-community", "lmstudio-community", "bartowski", "unsloth", "TheBloke", "local"]
VARIANTS = ["instruct", "chat", "base", "coder", "math", "vl", "it", "reasoning", "tools", "uncensored"]
QUANTS = ["4bit", "8bit", "bf16", "3bit", "6bit", "mxfp4"]
WORDS = ["fast", "small", "multilingual", "long", "context", "assistant", "code", "agent", "vision", "speech",
         "embedding", "retrieval", "summarise", "translate", "reasoning", "creative", "precise", "compact"]
TYPES = [ModelType.TEXT_GEN] * 7 + [ModelType.VISION, ModelType.EMBEDDINGS, ModelType.AUDIO]
STATUSES = [DownloadStatus.COMPLETED] * 18 + [DownloadStatus.DOWNLOADING, DownloadStatus.PAUSED]


def synthetic_rows(count: int, rng: random.Random):
    models, aliases, tags, caps, subs = [], [], [], [], {t: [] for t in ModelType}
    for pk in range(1, count + 1):
        family = rng.choice(FAMILIES)
        size = rng.choice(["0.5B", "1B", "1.5B", "3B", "4B", "7B", "8B", "14B", "32B", "70B"])
        variant, quant = rng.choice(VARIANTS), rng.choice(QUANTS)
        model_type = rng.choice(TYPES)
        model_id = f"{family}-{size.lower()}-{variant}-{quant}-{pk}"
        models.append({
            "id": pk, "model_id": model_id, "repo_id": f"{rng.choice(ORGS)}/{family.title()}-{size}-{variant}-{quant}-{pk}",
            "canonical_id": model_id, "model_type": model_type.value, "family": family,
            "local_path": f"/models/{model_id}", "size_bytes": rng.randrange(10**8, 10**11),
            "status": rng.choice(STATUSES).value, "description": " ".join(rng.sample(WORDS, 4)),
            "managed": True, "review_reasons": [],
        })
        aliases.append({"model_pk": pk, "alias": f"{family}{size.lower()}-{pk}", "alias_key": f"{family}{size.lower()}-{pk}",
                        "position": 0})
        for position, tag in enumerate(rng.sample(WORDS, 2)):
            tags.append({"model_pk": pk, "tag": tag, "position": position})
        if rng.random() < 0.9:  # probed
            caps.append({"id": pk, "model_pk": pk, "capability_type": model_type.value, "probe_version": 1})
            if model_type in (ModelType.TEXT_GEN, ModelType.VISION):
                subs[model_type].append({"id": pk, "supports_native_tools": rng.random() < 0.4,
                                         "supports_thinking": rng.random() < 0.25})
            elif model_type is ModelType.EMBEDDINGS:
                subs[model_type].append({"id": pk, "embedding_dimensions": 384, "is_normalized": True})
            else:
                subs[model_type].append({"id": pk, "supports_tts": rng.random() < 0.5, "supports_stt": rng.random() < 0.5})
    return models, aliases, tags, caps, subs


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def timed(fn, runs: list) -> list[float]:
    samples = []
    for args in runs:
        start = time.perf_counter()
        fn(*args)
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def run(url: str, args, rng: random.Random) -> dict:
    """Fill the (empty) database at `url`, measure, and remove what was added. Returns the numbers."""
    upgrade_database(url)
    engine = make_engine(url)
    dialect = engine.dialect.name
    with engine.connect() as connection:
        if connection.execute(text("SELECT COUNT(*) FROM models")).scalar():
            raise SystemExit(f"{url}: the database already holds models; give an empty one")
    try:
        return _measure(engine, args, rng) | {"dialect": dialect}
    finally:
        with engine.begin() as connection:  # leave the database as it was given
            if dialect == "postgresql":
                connection.execute(text("TRUNCATE models, model_capabilities RESTART IDENTITY CASCADE"))
            else:
                connection.execute(text("DELETE FROM models"))
        engine.dispose()


def _measure(engine, args, rng: random.Random) -> dict:
    dialect = engine.dialect.name
    start = time.perf_counter()
    models, aliases, tags, caps, subs = synthetic_rows(args.models, rng)
    with engine.begin() as connection:
        connection.execute(insert(ModelRecord.__table__), models)
        connection.execute(insert(ModelAliasRecord.__table__), aliases)
        connection.execute(insert(ModelTagRecord.__table__), tags)
        connection.execute(insert(CapabilityRecord.__table__), caps)
        for model_type, record in ((ModelType.TEXT_GEN, TextGenCapabilityRecord),
                                   (ModelType.VISION, VisionCapabilityRecord),
                                   (ModelType.EMBEDDINGS, EmbeddingCapabilityRecord),
                                   (ModelType.AUDIO, AudioCapabilityRecord)):
            if subs[model_type]:
                connection.execute(insert(record.__table__), subs[model_type])
        if dialect == "postgresql":
            sync_sequences(connection)  # rows went in with explicit ids
    load_seconds = time.perf_counter() - start

    start = time.perf_counter()
    with engine.begin() as connection:
        indexed = rebuild_search_index(connection)
    index_seconds = time.perf_counter() - start
    with engine.begin() as connection:
        connection.exec_driver_sql("ANALYZE")

    uow_factory = sqlalchemy_uow_factory(engine)

    # Incremental indexing through the repository (ORM write + index row, one transaction each).
    incremental = 500
    start = time.perf_counter()
    for i in range(incremental):
        with uow_factory() as uow:
            uow.models.add(Model(f"extra-{i}", repo_id=f"bench/extra-{i}", model_type=ModelType.TEXT_GEN,
                                 family="qwen3", aliases=[f"x{i}"], tags=["fast"], description="added later"))
            uow.commit()
    add_ms = (time.perf_counter() - start) * 1000 / incremental

    terms = [f[:3] for f in FAMILIES] + FAMILIES + [f"{f} {v}" for f in FAMILIES[:12] for v in VARIANTS[:4]] + \
            ["qwe", "lla 7b", "mistral instruct 4bit", "deep cod", "gem it", '"unbalanced', "phi-4*", "x:y", "zzz"]
    search_runs = [(rng.choice(terms),) for _ in range(args.queries)]
    filtered_runs = [(rng.choice(terms), rng.choice([None, ModelType.TEXT_GEN, ModelType.VISION]),
                      rng.choice([None, "tools", "thinking"]), rng.choice([None, DownloadStatus.COMPLETED]),
                      rng.randrange(0, 5) * 50) for _ in range(args.queries)]
    filters_only_runs = [(None, rng.choice([ModelType.TEXT_GEN, ModelType.VISION, ModelType.AUDIO]),
                          rng.choice([None, "tools", "tts"]), rng.choice([None, DownloadStatus.PAUSED]),
                          rng.randrange(0, 5) * 50) for _ in range(max(args.queries // 3, 20))]
    ids = [m["model_id"] for m in rng.sample(models, args.queries)]
    pk_runs = [(model_id,) for model_id in ids]
    like_runs = [(rng.choice(FAMILIES[:12]),) for _ in range(args.queries)]

    with uow_factory() as uow:
        session = uow.session

        def search(term):
            return uow.models.search(ModelQuery(text=term, limit=50))

        def filtered_page(term, model_type, capability, status, offset):
            return uow.models.search(ModelQuery(text=term, model_type=model_type, capability=capability,
                                                status=status, limit=50, offset=offset))

        def pk_lookup(model_id):
            return uow.models.get(model_id)

        def like_scan(term):
            return session.execute(
                text("SELECT id FROM models WHERE repo_id LIKE :p ORDER BY model_id LIMIT 50"), {"p": f"%{term}%"}
            ).all()

        for fn, runs in ((search, search_runs[:20]), (filtered_page, filtered_runs[:20])):
            timed(fn, runs)  # warm-up
        results = {
            "search": timed(search, search_runs),
            "filtered_page_50": timed(filtered_page, filtered_runs),
            "filters_only_page_50": timed(filtered_page, filters_only_runs),
            "baseline_pk_lookup": timed(pk_lookup, pk_runs),
            "baseline_like_scan_50": timed(like_scan, like_runs),
        }
        total_qwe = search("qwe").total
        version = session.execute(text("SELECT sqlite_version()" if dialect == "sqlite" else "SHOW server_version"))
        version = version.scalar()
    return {"results": results, "load_seconds": load_seconds, "index_seconds": index_seconds, "indexed": indexed,
            "add_ms": add_ms, "total_qwe": total_qwe, "version": version}


def report(run_: dict, args) -> None:
    import os

    dialect, results = run_["dialect"], run_["results"]
    index_kind = {"sqlite": "FTS5", "postgresql": "tsvector/GIN"}.get(dialect, "no index (LIKE)")
    print(f"== {dialect} {run_['version']}: {args.models:,} synthetic models, {args.queries} queries per measurement "
          f"(python {sys.version.split()[0]}, {os.cpu_count()} cpus, load average now {os.getloadavg()[0]:.1f})")
    print(f"bulk load of rows: {run_['load_seconds']:.2f} s")
    print(f"indexing {run_['indexed']:,} models into {index_kind}: {run_['index_seconds']:.2f} s "
          f"({run_['indexed'] / max(run_['index_seconds'], 1e-9):,.0f} models/s)")
    print(f"incremental add through the repository (ORM + index, own transaction): {run_['add_ms']:.2f} ms/model")
    print(f"'qwe' matches {run_['total_qwe']:,} models")
    print(f"{'measurement':<24}{'p50 ms':>10}{'p95 ms':>10}{'target p95':>12}")
    targets = {"search": 5.0, "filtered_page_50": 20.0}
    for name, samples in results.items():
        target = targets.get(name)
        print(f"{name:<24}{percentile(samples, .5):>10.3f}{percentile(samples, .95):>10.3f}"
              f"{(f'<= {target:g}' if target else '-'):>12}")
    base_pk = percentile(results["baseline_pk_lookup"], .95)
    base_like = percentile(results["baseline_like_scan_50"], .95)
    for name in ("search", "filtered_page_50"):
        p95 = percentile(results[name], .95)
        print(f"ratio p95 {name}: {p95 / base_pk:.1f}x pk lookup, {p95 / base_like:.2f}x LIKE scan"
              f" -> target {'met' if p95 <= targets[name] else 'MISSED'}")
    print(json.dumps({"dialect": dialect} | {k: {"p50": round(percentile(v, .5), 3), "p95": round(percentile(v, .95), 3)}
                                            for k, v in results.items()}))


def compare(runs: list[dict]) -> None:
    """Side by side, p95 in ms, and each database against the first one measured in this run."""
    first = runs[0]
    print(f"== p95 ms: {' vs '.join(r['dialect'] for r in runs)} (same synthetic library, same queries)")
    for name in first["results"]:
        cells = [percentile(r["results"][name], .95) for r in runs]
        ratios = " ".join(f"{c / cells[0]:.2f}x" for c in cells[1:])
        print(f"{name:<24}" + "".join(f"{c:>10.3f}" for c in cells) + f"   {runs[1]['dialect']}/{first['dialect']}: {ratios}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--database-url", action="append", default=[],
                        help="an EMPTY database to measure (repeatable), e.g. postgresql+psycopg://user@127.0.0.1/bench; "
                             "'sqlite' = a temporary SQLite file, 'temp-postgres' = a throw-away local PostgreSQL "
                             "server (Debian's postgresql package). Default: sqlite. The rows added are removed after.")
    args = parser.parse_args()
    urls = args.database_url or ["sqlite"]
    runs = []
    with contextlib.ExitStack() as stack:
        for url in urls:
            rng = random.Random(args.seed)  # every database gets the same library and the same queries
            if url == "sqlite":
                tmp = stack.enter_context(tempfile.TemporaryDirectory())
                url = f"sqlite:///{Path(tmp) / 'bench.db'}"
            elif url == "temp-postgres":
                url = stack.enter_context(_temp_postgres())
            runs.append(run(url, args, rng))
            report(runs[-1], args)
    if len(runs) > 1:
        compare(runs)


@contextlib.contextmanager
def _temp_postgres():
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, for tests.support
    from tests.support.postgres import PostgresServer, unavailable_reason

    reason = unavailable_reason()
    if reason:
        raise SystemExit(f"temp-postgres: {reason}")
    server = PostgresServer().start()
    try:
        yield server.url(server.create_database("bench"))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
