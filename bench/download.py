"""Download benchmark: mlxm pull vs curl vs huggingface_hub.snapshot_download, on loopback.

Serves a repo of 4 x 256 MB random files (generated into a temp dir, streamed from disk) from
the loopback test hub, then in ONE run measures:

* `mlxm pull` through the real service (HF client for metadata, ranged GET, sha256 verification on):
  in-process ("service only"), as a CLI process into a new home (its first command also creates the
  library database), and as a CLI process into a home whose database exists (a user's next model),
* `curl` of the same files (one process, the four URLs one after another; and `--parallel`),
* `huggingface_hub.snapshot_download` into an empty cache,

and prints throughput ratios to curl (targets: CLI process >= 0.9, service only >= 0.95) with each row's CPU
seconds (the tool's and the loopback hub's, and the least wall time they allow on this machine's cores), then kills
an `mlxm pull` process at 50% with SIGKILL, reruns it, and prints the bytes fetched twice (target: <= 1%
of a file). `--rcvbuf 65536,262144` repeats the CLI row and the kill with each SO_RCVBUF cap. `--before SRC`
adds the CLI rows run with another checkout's `src` (e.g. `git archive <sha> src migrations | tar -x -C /tmp/before`).

    .venv/bin/python bench/download.py [--file-mb 256] [--files 4] [--repeat 5] [--rcvbuf SIZES] [--before SRC]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_DISABLE_XET", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
# Every mlxm process (service worker, CLI) runs this tree's code, whichever checkout the venv was installed from.
os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), str(ROOT)])
# As on a user's machine, mlxm runs from bytecode caches (this sandbox sets PYTHONDONTWRITEBYTECODE, which
# would make every CLI row compile all of mlxm first); the warm-up round writes them.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)

from tests.support.fake_hub import FakeHub  # noqa: E402

REPO = "bench/big"
TINY = "bench/tiny"
MB = 1024 * 1024
WINDOW: list[tuple[float, float]] = []  # (child processes' CPU, this process's CPU) of the last timed call


PULL_WORKER = """
import resource, sys, time
from entrypoints.composition.container import Container
container = Container()
service = container.download_service()
service.catalog
container.uow_factory()
import huggingface_hub.hf_api, httpx2  # imports are process start-up: the CLI row includes them
def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
start, cpu_start = time.perf_counter(), cpu()
result = service.pull(sys.argv[1])
seconds, cpu_seconds = time.perf_counter() - start, cpu() - cpu_start
files = result.model.files
print(seconds, sum(f.size for f in files), all(f.sha256 for f in files), cpu_seconds)
"""

SNAPSHOT_WORKER = """
import sys, time
from huggingface_hub import snapshot_download
repo, cache, endpoint, workers = sys.argv[1:]
start = time.perf_counter()
snapshot_download(repo, cache_dir=cache, endpoint=endpoint, max_workers=int(workers))
print(time.perf_counter() - start)
"""


def generate(folder: Path, files: int, file_mb: int) -> dict[str, Path]:
    out = {}
    for i in range(files):
        path = folder / f"model-{i + 1:05d}-of-{files:05d}.safetensors"
        with open(path, "wb") as fh:
            for _ in range(file_mb // 8):
                fh.write(os.urandom(8 * MB))
        out[path.name] = path
    (folder / "config.json").write_text('{"model_type": "llama"}')
    return out


def _cpu() -> tuple[float, float]:
    import resource

    children, own = resource.getrusage(resource.RUSAGE_CHILDREN), resource.getrusage(resource.RUSAGE_SELF)
    return children.ru_utime + children.ru_stime, own.ru_utime + own.ru_stime


def _cpu_since(before: tuple[float, float]) -> tuple[float, float]:
    now = _cpu()
    return now[0] - before[0], now[1] - before[1]


def timed(fn) -> float:
    """Wall seconds of `fn`; its CPU (child processes', this process's: the hub's) goes to WINDOW."""
    before = _cpu()
    start = time.perf_counter()
    fn()
    seconds = time.perf_counter() - start
    WINDOW[:] = [_cpu_since(before)]
    return seconds


def settled(read, quiet: float = 0.5):
    value = read()
    while True:
        time.sleep(quiet)
        now = read()
        if now == value:
            return value
        value = now


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--file-mb", type=int, default=256)
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=5, help="interleaved rounds; the best of each tool counts")
    parser.add_argument("--rcvbuf", default="",
                        help="comma-separated SO_RCVBUF sizes in bytes (MLX_MANAGER_DOWNLOAD_RECEIVE_BUFFER_BYTES) "
                             "to compare: each adds a CLI-process row and a kill -9 run")
    parser.add_argument("--before", type=Path,
                        help="another checkout's src folder (`git archive <sha> src migrations | tar -x -C /tmp/before`): "
                             "its CLI rows run in the same rounds, for a before/after ratio")
    args = parser.parse_args()
    rcvbufs = [int(v) for v in args.rcvbuf.split(",") if v.strip()]

    work = Path(tempfile.mkdtemp(prefix="mlxm-bench-"))
    free = shutil.disk_usage(work).free
    need = args.files * args.file_mb * MB * 3
    if free < need:
        sys.exit(f"not enough disk in {work}: {free / MB:.0f} MB free, {need / MB:.0f} MB needed")
    try:
        run(work, args.files, args.file_mb, args.repeat, rcvbufs, args.before.resolve() if args.before else None)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _tools(work: Path, urls: list[str], total: int, n_files: int, endpoint: str, mlxm: str,
           rcvbufs: list[int], before: Path | None = None) -> dict:
    """name -> a function that downloads the repo once into a fresh folder and returns seconds."""
    tools = {}
    curl = shutil.which("curl")

    def fresh(name: str) -> Path:
        path = work / name
        shutil.rmtree(path, ignore_errors=True)
        return path

    # `openssl dgst` uses the CPU's SHA extensions like hashlib does; coreutils' sha256sum may not.
    openssl = shutil.which("openssl")
    if curl:
        def curl_run(parallel: bool, verify: bool = False) -> float:
            out = fresh("curl")
            out.mkdir()
            cmd = [curl, "-sS", "--no-progress-meter", "--fail"]
            if parallel:
                cmd += ["--parallel", "--parallel-max", str(n_files)]
            for url in urls:
                cmd += ["-o", str(out / url.rsplit("/", 1)[-1]), url]

            def fetch():
                subprocess.run(cmd, check=True)
                if verify:  # what "verification on" costs a curl user: hash every file afterwards
                    subprocess.run([openssl, "dgst", "-sha256", *sorted(str(p) for p in out.iterdir())],
                                   check=True, capture_output=True)

            seconds = timed(fetch)
            shutil.rmtree(out)
            return seconds

        tools["curl"] = lambda: curl_run(False)
        tools["curl --parallel"] = lambda: curl_run(True)
        if openssl:
            tools["curl, then sha256"] = lambda: curl_run(False, verify=True)
    else:
        print("curl not found: using a plain Python streaming GET as the baseline")

        def python_get() -> float:
            import httpx

            def fetch():
                with httpx.Client() as client:
                    for url in urls:
                        with client.stream("GET", url) as r, open(work / "py.bin", "wb") as fh:
                            for chunk in r.iter_bytes():
                                fh.write(chunk)

            return timed(fetch)

        tools["curl"] = python_get

    def mlxm_service() -> float:
        # The real service (container wiring, SQLite, verification on) in its own process like curl;
        # only the pull is timed (the worker prints it).
        home = fresh("mlxm-home")
        env = dict(os.environ, MLX_MANAGER_HOME=str(home))
        found = []
        timed(lambda: found.append(subprocess.run([sys.executable, "-c", PULL_WORKER, REPO], env=env, check=True,
                                                  capture_output=True, text=True)))
        seconds, size, verified, cpu_seconds = found[0].stdout.split()
        assert int(size) == total + len('{"model_type": "llama"}') and verified == "True"
        shutil.rmtree(home)
        # The pull's own CPU (the worker's start-up is not timed); the hub's over the worker's whole run.
        WINDOW[:] = [(float(cpu_seconds), WINDOW[0][1])]
        return float(seconds)

    def mlxm_cli(rcvbuf: int | None = None, library: bool = False, src: Path | None = None) -> float:
        home = fresh("mlxm-cli-home")
        env = dict(os.environ, MLX_MANAGER_HOME=str(home))
        if src is not None:  # another checkout's code, first on the path
            env["PYTHONPATH"] = os.pathsep.join([str(src), env["PYTHONPATH"]])
        if library:  # a user's next model: the home and its database exist (made by an untimed small pull)
            subprocess.run([mlxm, "pull", TINY, "--quiet"], env=env, check=True, capture_output=True)
        if rcvbuf is not None:
            env["MLX_MANAGER_DOWNLOAD_RECEIVE_BUFFER_BYTES"] = str(rcvbuf)
        seconds = timed(lambda: subprocess.run([mlxm, "pull", REPO, "--quiet"], env=env, check=True,
                                               capture_output=True))
        shutil.rmtree(home)
        return seconds

    def snapshot() -> float:
        cache = fresh("hf-cache")
        found = []
        timed(lambda: found.append(subprocess.run(
            [sys.executable, "-c", SNAPSHOT_WORKER, REPO, str(cache), endpoint, str(n_files)],
            check=True, capture_output=True, text=True)))
        shutil.rmtree(cache)
        return float(found[0].stdout.split()[0])

    # Timed inside the worker: no interpreter start-up or imports (curl's row includes its start-up).
    tools["mlxm pull (service only)"] = mlxm_service
    # The whole `mlxm pull` command, start-up included: the like-for-like comparison with curl.
    tools["mlxm pull (CLI process)"] = mlxm_cli
    # The same into a home that already has its database: the first pull also creates the library.
    tools["mlxm pull (CLI, library exists)"] = lambda: mlxm_cli(library=True)
    if before is not None:
        tools["before: mlxm pull (CLI process)"] = lambda: mlxm_cli(src=before)
        tools["before: mlxm pull (CLI, library exists)"] = lambda: mlxm_cli(library=True, src=before)
    for size in rcvbufs:
        tools[f"mlxm pull (CLI, rcvbuf {size // 1024} KB)"] = lambda size=size: mlxm_cli(size)
    tools["snapshot_download"] = snapshot
    return tools


def kill_and_resume(hub, work: Path, mlxm: str, total: int, file_size: int, rcvbuf: int | None) -> dict:
    """`mlxm pull` killed with SIGKILL at 50%, then run again: what the hub sent twice, per file."""
    from tests.support.fake_hub import Fault

    kill_home = work / "mlxm-kill-home"
    env = dict(os.environ, MLX_MANAGER_HOME=str(kill_home))
    if rcvbuf is not None:
        env["MLX_MANAGER_DOWNLOAD_RECEIVE_BUFFER_BYTES"] = str(rcvbuf)
    hub.clear_log()
    # A pass-through "fault" makes the hub stream in 256 KB writes it counts one by one; its
    # zero-copy sendfile path counts 8 MB slices and would miss a slice cut short by the kill.
    hub.inject("*.safetensors", Fault.slow(bytes_per_sec=10**12))
    proc = subprocess.Popen([mlxm, "pull", REPO, "--quiet"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def partial() -> int:
        total_bytes = 0
        for p in (kill_home / "staging").rglob("*.safetensors*"):
            if not p.name.endswith(".sha256"):
                try:
                    total_bytes += p.stat().st_size
                except FileNotFoundError:  # renamed from .part to its final name meanwhile
                    pass
        return total_bytes

    while partial() < total // 2:
        if proc.poll() is not None:
            raise SystemExit("the pull finished before reaching 50%: nothing to kill")
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    kept = partial()
    served_first = settled(lambda: sum(v for k, v in hub.bytes_served.items() if k.endswith(".safetensors")))
    first_by_file = {k: v for k, v in hub.bytes_served.items() if k.endswith(".safetensors")}
    hub.clear_log()
    resume_time = timed(lambda: subprocess.run([mlxm, "pull", REPO, "--quiet"], env=env, check=True,
                                               capture_output=True))
    weights = [k for k in hub.bytes_served if k.endswith(".safetensors")]
    served_second = sum(hub.bytes_served[k] for k in weights)
    refetched = served_first + served_second - total
    twice_by_file = {k.rsplit("/", 1)[-1]: first_by_file.get(k, 0) + hub.bytes_served[k] - file_size
                     for k in weights}
    beyond_missing = served_second - (total - kept)
    ranges = [r.headers.get("Range") for r in hub.requests if r.method == "GET" and "/resolve/" in r.path]
    shutil.rmtree(kill_home)
    hub.clear_faults()
    return {"rcvbuf": rcvbuf, "kept": kept, "resume_time": resume_time, "ranges": ranges, "refetched": refetched,
            "twice_by_file": twice_by_file, "beyond_missing": beyond_missing}


def run(work: Path, n_files: int, file_mb: int, repeat: int, rcvbufs: list[int], before: Path | None = None) -> None:
    src = work / "src"
    src.mkdir()
    print(f"generating {n_files} x {file_mb} MB random files ...", flush=True)
    files = generate(src, n_files, file_mb)
    total = sum(p.stat().st_size for p in files.values())
    file_size = file_mb * MB

    with FakeHub() as hub:
        sha = hub.add_repo_from_dir(REPO, src)
        hub.add_repo(TINY, {"config.json": b'{"model_type": "llama"}', "model.safetensors": b"\0" * 64})
        urls = [f"{hub.url}/{REPO}/resolve/{sha}/{name}" for name in sorted(files)]
        os.environ["HF_ENDPOINT"] = hub.url
        mlxm = str(Path(sys.executable).parent / "mlxm")
        tools = _tools(work, urls, total, n_files, hub.url, mlxm, rcvbufs, before)
        # Interleaved rounds, best of each: a shared 2-core machine's load swings hit every tool alike.
        runs: dict[str, list[float]] = {name: [] for name in tools}
        cpu: dict[str, list[tuple[float, float]]] = {name: [] for name in tools}  # (tool process, hub)
        # One discarded warm-up round: the first bytes written into a fresh VM's memory (page cache)
        # cost several times more than later ones, whichever tool happens to write them.
        for measure in tools.values():
            measure()
        for round_no in range(repeat):
            for name, measure in tools.items():
                runs[name].append(measure())
                cpu[name].append(WINDOW[0])
            print(f"round {round_no + 1}/{repeat}: "
                  + ", ".join(f"{n} {runs[n][-1]:.2f}s" for n in tools), flush=True)
        results = {name: min(times) for name, times in runs.items()}

        kills = [kill_and_resume(hub, work, mlxm, total, file_size, None)]
        kills += [kill_and_resume(hub, work, mlxm, total, file_size, size) for size in rcvbufs]

    baseline = results["curl"]
    print()
    print(f"repo: {n_files} x {file_mb} MB = {total / MB:.0f} MB on loopback ({os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f})")
    print(f"best of {repeat} interleaved rounds (after one discarded warm-up round)")
    cores = os.cpu_count() or 1
    print(f"{'tool':<34}{'seconds':>9}{'MB/s':>10}{'vs curl':>9}{'cpu s':>8}{'hub cpu s':>11}{'cpu floor s':>13}")
    for name, seconds in results.items():
        best = runs[name].index(seconds)
        tool_cpu, hub_cpu = cpu[name][best]
        print(f"{name:<34}{seconds:>9.2f}{total / MB / seconds:>10.0f}{baseline / seconds:>9.2f}{tool_cpu:>8.2f}"
              f"{hub_cpu:>11.2f}{(tool_cpu + hub_cpu) / cores:>13.2f}")
    # CPU is what bounds a loopback pull here: the tool's CPU seconds (start-up, copies, hashing) plus the
    # hub's (in this process), spread over every core, is the least wall time the machine allows.
    print(f"('cpu s': the tool process's user+system CPU in its best round; 'hub cpu s': the loopback hub's (this "
          f"process); 'cpu floor s' = their sum / {cores} cores, the least wall time those CPU seconds allow)")
    service, cli = "mlxm pull (service only)", "mlxm pull (CLI process)"
    print("('service only' times the pull inside an already started process; curl's and the CLI row's "
          "times include process start-up)")
    for name, target in ((cli, 0.9), ("mlxm pull (CLI, library exists)", 0.9), (service, 0.95)):
        ratio = baseline / results[name]
        print(f"{name} / curl throughput ratio: {ratio:.2f} (target >= {target}) -> "
              f"{'OK' if ratio >= target else 'BELOW TARGET'}")
        paired = sorted(c / m for c, m in zip(runs["curl"], runs[name]))
        print(f"  same-round ratios: {', '.join(f'{r:.2f}' for r in paired)} "
              f"(median {paired[len(paired) // 2]:.2f}; the spread is this shared machine's load)")
    if "curl --parallel" in results:
        print(f"{cli} / curl --parallel ratio: {results['curl --parallel'] / results[cli]:.2f}")
    if "curl, then sha256" in results:
        print(f"{cli} / (curl, then openssl sha256) ratio, both verifying: "
              f"{results['curl, then sha256'] / results[cli]:.2f}")
    for name in results:
        if name.startswith("before: "):
            now = name.removeprefix("before: ")
            paired = sorted(b / n for b, n in zip(runs[name], runs[now]))
            print(f"{now}: before / now time ratio: best {results[name] / results[now]:.2f}, same-round median "
                  f"{paired[len(paired) // 2]:.2f} (above 1: now is faster)")
        if name.startswith("mlxm pull (CLI, rcvbuf"):
            paired = sorted(d / m for d, m in zip(runs[cli], runs[name]))
            print(f"{name} / {cli}: best {results[cli] / results[name]:.2f}, same-round median "
                  f"{paired[len(paired) // 2]:.2f} (below 1: the smaller buffer slows the pull)")
    for kill in kills:
        print_kill(kill, total, file_size)


def print_kill(kill: dict, total: int, file_size: int) -> None:
    kept, beyond_missing, twice_by_file, refetched = (kill["kept"], kill["beyond_missing"], kill["twice_by_file"],
                                                       kill["refetched"])
    rcvbuf = "OS autotuning" if not kill["rcvbuf"] else f"{kill['rcvbuf'] // 1024} KB"
    print()
    print(f"kill -9 at {kept / total:.0%} of {total / MB:.0f} MB ({kept / MB:.1f} MB on disk), SO_RCVBUF {rcvbuf}, "
          f"rerun took {kill['resume_time']:.2f}s; resumed with ranges {sorted(r for r in kill['ranges'] if r)}")
    print(f"client-side: re-downloaded by the resumed pull beyond what was missing on disk: {beyond_missing} bytes "
          f"({beyond_missing / file_size:.2%} of a file; target <= 1%) -> "
          f"{'OK' if beyond_missing <= file_size // 100 else 'ABOVE TARGET'}")
    # The hub counts a byte as sent once its socket accepted it: what sat in the kernel's send and
    # receive buffers when the process died never reached mlxm, and is sent again on resume.
    worst = max(twice_by_file.values()) / file_size
    print("hub-side bytes sent twice (lost in socket buffers at the kill): "
          + ", ".join(f"{k.split('-of-')[0]}: {v / MB:.2f} MB" for k, v in sorted(twice_by_file.items()))
          + f"; worst {worst:.2%} of a file, {refetched / MB:.2f} MB in all")
    # The same 1% target, judged on what the hub really sent twice (the client-side count above
    # cannot see bytes that were in flight when the process died).
    print(f"hub-side verdict: worst file re-sent {worst:.2%} of a file (target <= 1%) -> "
          f"{'OK' if worst <= 0.01 else 'ABOVE TARGET'}; all files together {refetched / file_size:.2%} of a file")


if __name__ == "__main__":
    main()
