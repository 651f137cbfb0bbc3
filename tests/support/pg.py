"""A throwaway PostgreSQL server for tests and benchmarks (Debian's postgresql package).

Runs ``initdb`` + ``pg_ctl`` in a temporary directory on 127.0.0.1 and a free port;
``stop()`` removes everything. Works as root too (the cluster then runs as ``postgres``).

Tests run it without ``fsync`` (``TemporaryPostgres(fsync=False)``: nothing there must
outlive a crash) and copy each test's database from a template that already has the
schema; benchmarks keep ``fsync`` on, as a real deployment has it.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import psycopg

from tests.support.ports import free_port

#: The name tests give their template database (the newest schema, no rows).
TEMPLATE = "gpuhub_template"


def _pg_bin() -> Path | None:
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if versions:
        return Path(versions[-1]).parent
    found = shutil.which("pg_ctl")
    return Path(found).parent if found else None


def available() -> bool:
    """Whether a PostgreSQL server binary is installed."""
    return _pg_bin() is not None


class TemporaryPostgres:
    """A PostgreSQL cluster living in a temp dir for the duration of a test session."""

    def __init__(self, *, fsync: bool = True) -> None:
        self.fsync = fsync
        self.bin = _pg_bin()
        if self.bin is None:
            raise RuntimeError("PostgreSQL is not installed: apt-get install postgresql")
        self.dir = Path(tempfile.mkdtemp(prefix="gpuhub-pg-"))
        self.port = free_port()
        self._as: list[str] = []
        if os.geteuid() == 0:
            # initdb refuses to run as root
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str) -> None:
        subprocess.run(
            [*self._as, *args],
            check=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=120,
        )

    def start(self) -> TemporaryPostgres:
        """initdb and start the server; returns self."""
        data = self.dir / "data"
        self._run(
            str(self.bin / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8"
        )
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(data), "-l", str(self.dir / "log"), "-w", "-t", "60",
            "-o", f"-h 127.0.0.1 -p {self.port} -k {self.dir} {self._durability}", "start",
        )  # fmt: skip
        return self

    @property
    def _durability(self) -> str:
        if self.fsync:
            return "-c fsync=on"
        return "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"

    def url(self, name: str) -> str:
        """The SQLAlchemy URL of database ``name``."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def create_database(self, name: str | None = None, *, template: str | None = None) -> str:
        """Create a fresh database (a copy of ``template`` if given); its SQLAlchemy URL."""
        name = name or "t_" + uuid.uuid4().hex[:12]
        copy = f' TEMPLATE "{template}"' if template else ""
        with psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"{copy}')
        return self.url(name)

    def stop(self) -> None:
        """Stop the server and delete its files."""
        try:
            self._run(
                str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "immediate", "stop"
            )
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)
