"""Start `mlxm serve` at login: a macOS LaunchAgent (launchctl) or a Linux systemd --user unit.

The files are rendered and parsed here (plistlib for launchd; systemd's key=value format is simple
enough that a few lines read it back). Loading goes through an injected command runner, so tests
check the generated files without touching the host's launchd or systemd.
"""

from __future__ import annotations

import os
import plistlib
import shlex
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

LABEL = "io.mlxm.serve"
UNIT_NAME = "mlxm.service"

# (returncode, combined output). The default runs the command; tests pass a recorder.
CommandRunner = Callable[[Sequence[str]], tuple[int, str]]


def run_command(argv: Sequence[str]) -> tuple[int, str]:
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=30, check=False)
    except FileNotFoundError:
        return 127, f"{argv[0]} not found"
    except subprocess.TimeoutExpired:
        return 124, f"{argv[0]} timed out"
    return done.returncode, (done.stdout + done.stderr).strip()


@dataclass(frozen=True)
class ServiceSpec:
    """What the service runs: `program` (argv), the environment it runs with, and where it logs."""

    program: tuple[str, ...]
    environment: Mapping[str, str]
    home: Path
    stdout_log: Path
    stderr_log: Path


@dataclass
class ServiceStatus:
    platform: str
    path: Path
    installed: bool
    loaded: bool | None = None  # None: the service manager could not be asked
    detail: str = ""
    program: list[str] = field(default_factory=list)
    environment: dict[str, str] = field(default_factory=dict)
    home: str | None = None
    stdout_log: str | None = None
    stderr_log: str | None = None

    def to_dict(self) -> dict:
        return {
            "platform": self.platform, "path": str(self.path), "installed": self.installed,
            "loaded": self.loaded, "detail": self.detail, "program": self.program, "home": self.home,
            "stdout_log": self.stdout_log, "stderr_log": self.stderr_log,
            # Values may be secrets (keys): the names are enough to see which settings it runs with.
            "settings": sorted(self.environment),
        }


def build_spec(home: Path, environ: Mapping[str, str], executable: str) -> ServiceSpec:
    """The service for this home: every MLX_* setting of the current environment, the home made explicit."""
    environment = {key: value for key, value in sorted(environ.items()) if key.upper().startswith("MLX_")}
    environment["MLX_MANAGER_HOME"] = str(home)
    # launchd and systemd start with a bare PATH: keep the caller's so `mlxm` finds what it finds here.
    if "PATH" in environ:
        environment["PATH"] = environ["PATH"]
    logs = home / "logs"
    return ServiceSpec(program=(executable, "serve"), environment=environment, home=home,
                       stdout_log=logs / "serve.out.log", stderr_log=logs / "serve.err.log")


def mlxm_executable() -> str:
    """The `mlxm` script next to this interpreter (the install the user runs), else the one on PATH."""
    import shutil

    beside = Path(sys.executable).with_name("mlxm")
    if beside.exists():
        return str(beside)
    found = shutil.which("mlxm")
    if found is None:
        raise FileNotFoundError("no `mlxm` executable next to this Python or on PATH; install mlxm first")
    return str(Path(found).resolve())


def render_plist(spec: ServiceSpec) -> bytes:
    return plistlib.dumps({
        "Label": LABEL,
        "ProgramArguments": list(spec.program),
        "EnvironmentVariables": dict(spec.environment),
        "WorkingDirectory": str(spec.home),
        "RunAtLoad": True,
        "KeepAlive": {"SuccessfulExit": False},  # restart after a crash, not after a clean stop
        "StandardOutPath": str(spec.stdout_log),
        "StandardErrorPath": str(spec.stderr_log),
    })


def _systemd_quote(value: str) -> str:
    return '"' + _specifiers(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _specifiers(value: str) -> str:
    """systemd expands `%x` specifiers in these settings: a literal `%` (a home like `~/50%`) is `%%`."""
    return value.replace("%", "%%")


def _exec_argument(value: str) -> str:
    """ExecStart also expands `$NAME`: a literal `$` is `$$`."""
    return _systemd_quote(value.replace("$", "$$"))


def _unescape(value: str) -> str:
    return value.replace("%%", "%")


def render_unit(spec: ServiceSpec) -> str:
    lines = [
        "[Unit]",
        "Description=mlxm model server (mlxm serve)",
        "After=network.target",
        "",
        "[Service]",
        "Type=simple",
        "ExecStart=" + " ".join(_exec_argument(arg) for arg in spec.program),
        # A plain path: systemd takes no quotes here ("WorkingDirectory= path is not absolute: \"/...\"").
        f"WorkingDirectory={_specifiers(str(spec.home))}",
        *(f"Environment={_systemd_quote(f'{key}={value}')}" for key, value in spec.environment.items()),
        f"StandardOutput=append:{_specifiers(str(spec.stdout_log))}",
        f"StandardError=append:{_specifiers(str(spec.stderr_log))}",
        "Restart=on-failure",
        "",
        "[Install]",
        "WantedBy=default.target",
        "",
    ]
    return "\n".join(lines)


def _split(value: str) -> list[str]:
    """The words of a setting; a hand-edited line with an unclosed quote is read as it stands."""
    try:
        return shlex.split(value)
    except ValueError:
        return [value]


def parse_unit(text: str) -> dict:
    """Read back what render_unit wrote: program, environment, log paths."""
    found: dict = {"program": [], "environment": {}, "stdout_log": None, "stderr_log": None, "home": None}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if not sep:
            continue
        if key == "ExecStart":
            found["program"] = [_unescape(arg).replace("$$", "$") for arg in _split(value)]
        elif key == "Environment" and _split(value):
            name, _, setting = _unescape(_split(value)[0]).partition("=")
            found["environment"][name] = setting
        elif key == "WorkingDirectory":
            # Units written by earlier versions quoted it (which systemd refused); read both.
            found["home"] = _unescape((_split(value) or [value])[0] if value.startswith('"') else value)
        elif key == "StandardOutput":
            found["stdout_log"] = _unescape(value.removeprefix("append:"))
        elif key == "StandardError":
            found["stderr_log"] = _unescape(value.removeprefix("append:"))
    return found


class LoginService:
    """Install, uninstall and report the login service of one platform ("macos" or "linux")."""

    def __init__(self, platform: str, user_home: Path, runner: CommandRunner = run_command) -> None:
        if platform not in ("macos", "linux"):
            raise ValueError(f"start at login is supported on macOS and Linux, not {platform!r}")
        self.platform = platform
        self.runner = runner
        if platform == "macos":
            self.path = user_home / "Library" / "LaunchAgents" / f"{LABEL}.plist"
        else:
            self.path = user_home / ".config" / "systemd" / "user" / UNIT_NAME

    def install(self, spec: ServiceSpec, load: bool = True) -> list[str]:
        """Write the file (mode 0600: the environment may hold keys) and load it. Returns what was done."""
        spec.stdout_log.parent.mkdir(parents=True, exist_ok=True)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        content = render_plist(spec) if self.platform == "macos" else render_unit(spec).encode()
        temporary = self.path.with_name(self.path.name + ".tmp")
        temporary.write_bytes(content)
        os.chmod(temporary, 0o600)
        was_installed = self.path.exists()
        if was_installed and load:
            self._unload()  # a reinstall replaces the running definition
        os.replace(temporary, self.path)
        done = [f"wrote {self.path}"]
        if load:
            done += self._load()
        return done

    def uninstall(self, unload: bool = True) -> list[str]:
        if not self.path.exists():
            return []
        done = self._unload() if unload else []
        self.path.unlink()
        if unload and self.platform == "linux":
            self.runner(["systemctl", "--user", "daemon-reload"])
        return [*done, f"removed {self.path}"]

    def status(self, ask: bool = True) -> ServiceStatus:
        status = ServiceStatus(platform=self.platform, path=self.path, installed=self.path.exists())
        if not status.installed:
            return status
        if self.platform == "macos":
            try:
                data = plistlib.loads(self.path.read_bytes())
            except Exception:  # noqa: BLE001 - plistlib raises InvalidFileException, ExpatError, ValueError...
                data = None
            if not isinstance(data, dict):  # hand-edited into something else: report the rest, not a crash
                status.detail = f"{self.path} is not a readable property list"
                return status
            status.program = list(data.get("ProgramArguments", []))
            status.environment = dict(data.get("EnvironmentVariables", {}))
            status.home = data.get("WorkingDirectory")
            status.stdout_log, status.stderr_log = data.get("StandardOutPath"), data.get("StandardErrorPath")
        else:
            data = parse_unit(self.path.read_text())
            status.program, status.environment, status.home = data["program"], data["environment"], data["home"]
            status.stdout_log, status.stderr_log = data["stdout_log"], data["stderr_log"]
        if ask:
            argv = (["launchctl", "list", LABEL] if self.platform == "macos"
                    else ["systemctl", "--user", "is-active", UNIT_NAME])
            code, output = self.runner(argv)
            status.loaded = None if code in (124, 127) else code == 0
            status.detail = output.splitlines()[0] if output else ""
        return status

    def _load(self) -> list[str]:
        if self.platform == "macos":
            commands = [["launchctl", "load", "-w", str(self.path)]]
        else:
            commands = [["systemctl", "--user", "daemon-reload"],
                        ["systemctl", "--user", "enable", "--now", UNIT_NAME]]
        return [self._run(argv) for argv in commands]

    def _unload(self) -> list[str]:
        argv = (["launchctl", "unload", "-w", str(self.path)] if self.platform == "macos"
                else ["systemctl", "--user", "disable", "--now", UNIT_NAME])
        return [self._run(argv)]

    def _run(self, argv: list[str]) -> str:
        code, output = self.runner(argv)
        line = " ".join(argv)
        return line if code == 0 else f"{line} failed ({code}): {output}"


def current_platform() -> str:
    return {"darwin": "macos", "linux": "linux"}.get(sys.platform, sys.platform)
