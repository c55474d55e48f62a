"""Embedded PostgreSQL for the demo and the tests, from the ``pgserver`` wheel's binaries.

``pgserver`` ships PostgreSQL 16 in the wheel, so nothing needs installing by hand. Its own
launcher listens on a Unix socket only; Airflow connections, GX and psql all prefer a TCP
address, so we drive the same binaries ourselves and listen on 127.0.0.1 only. As root
(containers, CI) the server runs as the unprivileged ``pgserver`` user, as pgserver does.

Durable by default: ``fsync``, ``synchronous_commit`` and ``full_page_writes`` stay on, so a
commit the client saw acknowledged survives a crash (SIGKILL, power loss) — a ledger's staging
database must never lose the posting log's acknowledged writes. ``durable=False`` trades that for
speed in throwaway benchmarks only.

Any other PostgreSQL works too: point the ``sitoo_erp_db`` connection at it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

log = logging.getLogger(__name__)

SUPERUSER = "postgres"


def _bin(name: str) -> str:
    from pgserver._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / name)


def _system_user() -> str | None:
    """The OS user that runs postgres: ourselves, or ``pgserver`` when we are root."""
    if os.geteuid() != 0:
        return None
    from pgserver.utils import ensure_user_exists

    ensure_user_exists("pgserver")
    return "pgserver"


@dataclass
class EmbeddedPostgres:
    """A PostgreSQL cluster in ``data_dir`` listening on ``127.0.0.1:port``."""

    data_dir: Path
    port: int = 54329
    durable: bool = True

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir).resolve()

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def _run(self, args: list[str], timeout: float = 60) -> None:
        user = _system_user()
        subprocess.run(args, check=True, timeout=timeout, user=user, capture_output=True)  # noqa: S603 - our own binaries

    def _prepare(self) -> None:
        user = _system_user()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if user is not None:
            import pwd
            import stat

            from pgserver._commands import POSTGRES_BIN_PATH
            from pgserver.utils import ensure_folder_permissions, ensure_prefix_permissions

            ensure_prefix_permissions(self.data_dir)
            ensure_prefix_permissions(POSTGRES_BIN_PATH)
            read = stat.S_IRGRP | stat.S_IROTH
            execute = stat.S_IXGRP | stat.S_IXOTH
            ensure_folder_permissions(POSTGRES_BIN_PATH, execute | read)
            ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", read)
            entry = pwd.getpwnam(user)
            os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)
        if not (self.data_dir / "PG_VERSION").exists():
            log.info("initialising embedded PostgreSQL in %s", self.data_dir)
            self._run(
                [
                    _bin("initdb"),
                    "-D",
                    str(self.data_dir),
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--no-sync",
                    "-U",
                    SUPERUSER,
                ]
            )

    def is_running(self) -> bool:
        try:
            with psycopg.connect(self.url(), connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def _running_port(self) -> int | None:
        """The port of a server already running on this data directory (postmaster.pid line 4)."""
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
            return int(lines[3])
        except (OSError, IndexError, ValueError):
            return None

    def start(self) -> EmbeddedPostgres:
        """Initialise if needed and start; a server already running on this directory is reused
        (on whatever port it listens), e.g. after an interrupted run."""
        running = self._running_port()
        if running is not None and running != self.port:
            previous, self.port = self.port, running
            if self.is_running():
                log.info("reusing PostgreSQL already running on %s (port %s)", self.data_dir, running)
                return self
            self.port = previous
        if self.is_running():
            return self
        self._prepare()
        safety = (
            "-c fsync=on -c synchronous_commit=on -c full_page_writes=on"
            if self.durable
            else "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        options = f"-h 127.0.0.1 -p {self.port} -k '' {safety} -c max_connections=200 -c shared_buffers=256MB"
        self._run(
            [
                _bin("pg_ctl"),
                "-D",
                str(self.data_dir),
                "-w",
                "-t",
                "60",
                "-o",
                options,
                "-l",
                str(self.data_dir / "server.log"),
                "start",
            ],
            timeout=90,
        )
        deadline = time.monotonic() + 30
        while not self.is_running():
            if time.monotonic() > deadline:
                raise RuntimeError(f"embedded PostgreSQL did not start; see {self.data_dir / 'server.log'}")
            time.sleep(0.2)
        return self

    def stop(self, mode: str = "fast") -> None:
        if (self.data_dir / "postmaster.pid").exists():
            self._run([_bin("pg_ctl"), "-D", str(self.data_dir), "-w", "-m", mode, "stop"])

    def crash(self) -> None:
        """SIGKILL the postmaster and every backend at once, as a power cut would: no shutdown
        checkpoint, no flush of anything not yet committed to the WAL. ``start()`` then recovers."""
        pid = self._postmaster_pid()
        if pid is None:
            return
        victims = [pid, *self._children(pid)]
        for victim in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while any(_alive(v) for v in victims):
            if time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL processes {victims} survived SIGKILL")
            time.sleep(0.05)
        # A killed postmaster may linger as a zombie until its parent reaps it; PostgreSQL would take
        # that for a live server holding the lock file, so the (now stale) lock file goes too.
        (self.data_dir / "postmaster.pid").unlink(missing_ok=True)

    def _postmaster_pid(self) -> int | None:
        """The running postmaster of this data directory (never a stale pid reused by another process)."""
        try:
            pid = int((self.data_dir / "postmaster.pid").read_text().splitlines()[0])
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            return None
        return pid if str(self.data_dir).encode() in cmdline else None

    @staticmethod
    def _children(pid: int) -> list[int]:
        out = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(stat.parent.name))
        return out

    def restart(self) -> None:
        """Stop and start again: proves state survives a database restart between runs."""
        self.stop()
        self.start()

    def ensure_database(self, name: str) -> str:
        """Create ``name`` if missing and return its URL."""
        with psycopg.connect(self.url(), autocommit=True) as conn:
            exists = conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone()
            if not exists:
                conn.execute(f'create database "{name}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')


def _alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
