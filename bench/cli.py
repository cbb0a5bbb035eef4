"""CLI start-up benchmark: how long `mlxm` takes to answer, against bare Python in the same run.

Builds a small library in a throw-away home (a few imported model folders and a profile), then
times each command as a fresh process, `--runs` rounds (round-robin), and prints medians and ratios:

* read commands (`list`, `show`, `search`, `profile list`, `catalog`, `select`) against
  `python -c "import sqlalchemy, sqlalchemy.orm"` (target <= 1.3x),
* shell completion of model, profile and download names (click's `_MLXM_COMPLETE`) against
  `python -c pass` (target <= 5x),
* `--help` against `python -c pass` (reported; "no worse than before").

`--before SRC` adds, in the same rounds, each command run from another checkout's `src` folder (e.g.
`git archive <sha> src | tar -x -C /tmp/before`), put first on PYTHONPATH: before/after in one run.

    .venv/bin/python bench/cli.py [--runs 7] [--before /tmp/before/src]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.model_folders import write_model_folder  # noqa: E402

PYTHON = sys.executable
MLXM = str(Path(sys.executable).with_name("mlxm"))


def _run(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds, and the CPU seconds (user + system) the process used."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()[:300]}")
    return elapsed, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def _medians(commands: dict[str, tuple[list[str], dict[str, str]]], runs: int) -> dict[str, tuple[float, float]]:
    """Round-robin: each round runs every command once, so load that drifts during the run hits all rows alike.
    CPU time is reported beside wall time: on a shared machine it varies far less with other processes."""
    for argv, env in commands.values():
        _run(argv, env)  # warm the page cache and .pyc files; not counted
    samples: dict[str, list[tuple[float, float]]] = {label: [] for label in commands}
    for _ in range(runs):
        for label, (argv, env) in commands.items():
            samples[label].append(_run(argv, env))
    return {label: (statistics.median(w for w, _ in values), statistics.median(c for _, c in values))
            for label, values in samples.items()}


def _build_library(home: Path, env: dict[str, str]) -> str:
    downloads = home.parent / "downloads"
    names = []
    for index in range(3):
        folder = write_model_folder(downloads / f"BenchModel{index}", seed=index)
        name = f"bench-model-{index}"
        subprocess.run([MLXM, "import", str(folder), "--name", name], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        names.append(name)
    subprocess.run([MLXM, "profile", "create", "bench-profile", names[0], "--temperature", "0.2"], env=env,
                   check=True, stdout=subprocess.DEVNULL)
    return names[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--before", type=Path, help="another checkout's src folder, timed in the same rounds")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="mlxm-cli-bench-") as tmp:
        home = Path(tmp) / "home"
        env = {**os.environ, "MLX_MANAGER_HOME": str(home), "MLX_MANAGER_OFFLINE": "true"}
        # Python writes bytecode caches by default; a machine that disables it (PYTHONDONTWRITEBYTECODE)
        # would recompile mlxm's sources on every run while the installed baseline packages have theirs.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        model = _build_library(home, env)

        completion_env = lambda words, cword: {**env, "_MLXM_COMPLETE": "bash_complete",  # noqa: E731
                                                "COMP_WORDS": words, "COMP_CWORD": str(cword)}
        baselines = {
            "python -c pass": ([PYTHON, "-c", "pass"], env),
            "python -c 'import sqlalchemy, sqlalchemy.orm'": ([PYTHON, "-c", "import sqlalchemy, sqlalchemy.orm"], env),
        }
        reads = {
            "mlxm list": [MLXM, "list"],
            f"mlxm show {model}": [MLXM, "show", model],
            "mlxm search bench": [MLXM, "search", "bench"],
            "mlxm profile list": [MLXM, "profile", "list"],
            "mlxm catalog": [MLXM, "catalog"],
            "mlxm select": [MLXM, "select"],
        }
        completions = {
            "complete: mlxm show <model>": completion_env("mlxm show bench", 2),
            "complete: mlxm profile show <profile>": completion_env("mlxm profile show ben", 3),
            "complete: mlxm downloads cancel <id>": completion_env("mlxm downloads cancel ", 3),
        }
        helps = {"mlxm --help": [MLXM, "--help"], "mlxm pull --help": [MLXM, "pull", "--help"]}

        commands = {**baselines, **{label: (argv, env) for label, argv in {**reads, **helps}.items()},
                    **{label: ([MLXM], run_env) for label, run_env in completions.items()}}
        if args.before is not None:
            # The same commands with the other checkout's modules first on the path (same venv, same home).
            path = os.pathsep.join(filter(None, [str(args.before.resolve()), env.get("PYTHONPATH")]))
            commands.update({f"before: {label}": (argv, {**run_env, "PYTHONPATH": path})
                             for label, (argv, run_env) in commands.items() if label not in baselines})
        rows = _medians(commands, args.runs)

    bare, bare_cpu = rows["python -c pass"]
    sqla, sqla_cpu = rows["python -c 'import sqlalchemy, sqlalchemy.orm'"]
    load = os.getloadavg()[0]
    print(f"CLI start-up, median of {args.runs} runs each (python {sys.version.split()[0]}, "
          f"{os.cpu_count()} cpus, load average {load:.1f}); verdicts on wall time")
    print(f"{'command':45s} {'median ms':>10s} {'ratio':>8s}  {'target':14s} {'verdict':12s} {'cpu ms':>8s} {'cpu ratio':>9s}")
    for label, (seconds, cpu) in rows.items():
        plain = label.removeprefix("before: ")
        if plain in reads:
            ratio, cpu_ratio, base, target = seconds / sqla, cpu / sqla_cpu, "x sqla", 1.3
        elif plain.startswith("complete:"):
            ratio, cpu_ratio, base, target = seconds / bare, cpu / bare_cpu, "x bare", 5.0
        elif plain in helps:
            ratio, cpu_ratio, base, target = seconds / bare, cpu / bare_cpu, "x bare", None
        else:
            print(f"{label:45s} {seconds * 1000:10.1f} {'':8s}  {'':14s} {'':12s} {cpu * 1000:8.1f}")
            continue
        verdict = "" if target is None else ("ok" if ratio <= target else "ABOVE TARGET")
        shown_target = "reported" if target is None else f"<= {target}{base[1:]}"
        print(f"{label:45s} {seconds * 1000:10.1f} {ratio:7.2f}{base[:1]}  {shown_target:14s} {verdict:12s} "
              f"{cpu * 1000:8.1f} {cpu_ratio:8.2f}{base[:1]}")

if __name__ == "__main__":
    main()
