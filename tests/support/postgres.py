"""A throw-away PostgreSQL server for tests: `initdb` + `pg_ctl` in a temp folder, on a free loopback port.

Uses Debian's `postgresql` package (binaries under /usr/lib/postgresql/<N>/bin, or on PATH).
`initdb` refuses to run as root, so as root the server runs as the `postgres` user the package
creates (through `runuser`). One server per test session (per xdist worker); each test gets a
fresh database copied from a migrated template (`CREATE DATABASE ... TEMPLATE`, ~tens of ms).
When PostgreSQL is missing, `unavailable_reason()` says why; the fixtures skip with it, and under
CI=true they fail instead (a skipped PostgreSQL suite must not pass as green there).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

SERVER_USER = "postgres"  # the OS user Debian's package creates; used only when we are root
DB_USER = "mlxm"


def _bin_dir() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                        key=lambda p: int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0)
    return Path(candidates[-1]).parent if candidates else None


def _psycopg_missing() -> str | None:
    try:
        import psycopg  # noqa: F401
    except ImportError as exc:
        return f"psycopg is not importable ({exc}); `make install-dev` installs it"
    return None


def unavailable_reason() -> str | None:
    """Why no test PostgreSQL server can be started here; None when it can."""
    missing = _psycopg_missing()
    if missing:
        return missing
    if _bin_dir() is None:
        return ("PostgreSQL is not installed (no initdb on PATH or under /usr/lib/postgresql/*/bin); "
                "`CI=true make test` installs it on Debian via scripts/system-packages.sh")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SERVER_USER)
        except KeyError:
            return f"running as root and there is no {SERVER_USER!r} user to run initdb as"
        if shutil.which("runuser") is None:
            return "running as root and `runuser` is missing"
    return None


def skip_or_fail(reason: str) -> None:
    import pytest

    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL tests cannot run under CI=true: {reason}", pytrace=False)
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    """One running server; `url(dbname)` gives a `postgresql+psycopg://` URL on 127.0.0.1."""

    def __init__(self) -> None:
        self.bin_dir = _bin_dir()
        assert self.bin_dir is not None, unavailable_reason()
        self.as_root = os.geteuid() == 0
        # Under /tmp (world-traversable), not pytest's 0700 tmp dirs: the server user must reach it.
        self.root = Path(tempfile.mkdtemp(prefix="mlxm-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = 0
        if self.as_root:
            record = pwd.getpwnam(SERVER_USER)
            os.chown(self.root, record.pw_uid, record.pw_gid)
        self._admin = None

    def _run(self, *args: str) -> subprocess.CompletedProcess:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self.as_root:
            command = ["runuser", "-u", SERVER_USER, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}): {result.stderr.strip()}\n{log}")
        return result

    def start(self) -> "PostgresServer":
        self._run("initdb", "-D", str(self.data), "-U", DB_USER, "--auth=trust", "-E", "UTF8",
                  "--locale=C", "--no-sync")
        for attempt in range(5):
            self.port = _free_port()
            # Loopback TCP only, no Unix socket; durability off (a test server is thrown away).
            options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories='' "
                       "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
            try:
                self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60",
                          "start")
                return self
            except RuntimeError:
                if attempt == 4:
                    raise
                time.sleep(0.2)  # another process took the port between probe and bind
        return self

    def stop(self) -> None:
        if self._admin is not None:
            self._admin.close()
            self._admin = None
        try:
            if self.data.exists():
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql+psycopg://{DB_USER}@127.0.0.1:{self.port}/{dbname}"

    def _admin_connection(self):
        import psycopg

        if self._admin is None or self._admin.closed:
            self._admin = psycopg.connect(host="127.0.0.1", port=self.port, user=DB_USER, dbname="postgres",
                                          autocommit=True)
        return self._admin

    def create_database(self, name: str | None = None, template: str | None = None) -> str:
        """Create a database (optionally a copy of `template`); returns its name."""
        name = name or f"t_{uuid.uuid4().hex[:16]}"
        sql = f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")
        self._admin_connection().execute(sql)
        return name

    def drop_database(self, name: str) -> None:
        self._admin_connection().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class PostgresTemplates:
    """Databases at head, copied from one template migrated once per server."""

    def __init__(self, server: PostgresServer) -> None:
        self.server = server
        self._template: str | None = None

    def migrated_database(self) -> str:
        """URL of a fresh database at head."""
        if self._template is None:
            from adapters.sqlalchemy.migrate import upgrade_database

            name = self.server.create_database("mlxm_template")
            upgrade_database(self.server.url(name))
            self._template = name
        return self.server.url(self.server.create_database(template=self._template))

    def empty_database(self) -> str:
        return self.server.url(self.server.create_database())

    def drop(self, url: str) -> None:
        self.server.drop_database(url.rsplit("/", 1)[1])
