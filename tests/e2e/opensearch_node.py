"""An OpenSearch node of one test alone, on free ports, that the test may stop, freeze and start again.

The stack's OpenSearch (9200) is shared by everyone's tests, so outages are played on a private node run from
the same installed home ``scripts/stack`` prepared (``.stack/opensearch/home``), with the stack's
``opensearch.yml`` and ``jvm.options`` templates, a small heap, and data, logs and keystore of its own. OpenSearch
refuses to run as root: under root it runs as the stack's search user, as ``scripts/stack`` runs it, in a folder of
the system's temporary directory that user owns (pytest's temporary folders are closed to other users); its log
is copied into the test's folder when the node is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import httpx

from tests.e2e.fleet import ROOT
from tidings.bench.system import free_port

TEMPLATES = ROOT / "scripts" / "opensearch"
# The user scripts/stack runs OpenSearch as.
SEARCH_USER = "tidings-search"
HEAP = "256m"


def installed_home() -> Path:
    """The OpenSearch home ``scripts/stack`` installed: ``TIDINGS_OPENSEARCH_HOME``, else this checkout's
    ``.stack/opensearch/home``, else the main checkout's (a git worktree shares the main checkout's stack)."""
    if explicit := os.environ.get("TIDINGS_OPENSEARCH_HOME"):
        return Path(explicit)
    candidates = [ROOT / ".stack" / "opensearch" / "home"]
    common = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--path-format=absolute", "--git-common-dir"],
        capture_output=True,
        text=True,
        check=False,
    )
    if common.returncode == 0:
        candidates.append(Path(common.stdout.strip()).parent / ".stack" / "opensearch" / "home")
    for home in candidates:
        if (home / "bin" / "opensearch").exists():
            return home
    raise AssertionError(f"no OpenSearch home in {[str(c) for c in candidates]}: run ./scripts/stack up opensearch")


def java17_home() -> Path:
    """Debian's Java 17, which OpenSearch 2 runs on (as in scripts/stack)."""
    for home in sorted(Path("/usr/lib/jvm").glob("java-17-openjdk-*")):
        if (home / "bin" / "java").exists():
            return home
    raise AssertionError("no Java 17 under /usr/lib/jvm: run ./scripts/stack up opensearch")


class OpenSearchNode:
    def __init__(self, logs: Path) -> None:
        self.port = free_port()
        self.transport_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._logs = logs
        self._home = installed_home()
        self._java = java17_home()
        self._as_root = os.geteuid() == 0
        self._user = pwd.getpwnam(SEARCH_USER) if self._as_root else None
        self._dir = Path(tempfile.mkdtemp(prefix="tidings-opensearch-"))
        self._process: asyncio.subprocess.Process | None = None
        try:
            self._prepare()
        except BaseException:
            shutil.rmtree(self._dir, ignore_errors=True)
            raise

    def _prepare(self) -> None:
        """The node's folders and configuration: the stack's templates with this node's paths and ports."""
        config, data, log, tmp = (self._dir / name for name in ("config", "data", "log", "tmp"))
        for folder in (config / "jvm.options.d", data, log, tmp):
            folder.mkdir(parents=True)
        settings = (TEMPLATES / "opensearch.yml").read_text()
        settings = settings.replace("@DATA_DIR@", str(data)).replace("@LOG_DIR@", str(log))
        for key, value in {
            "cluster.name": f"tidings-test-{self.port}",
            "node.name": f"tidings-test-{self.port}",
            "http.port": str(self.port),
            "transport.port": str(self.transport_port),
        }.items():
            settings, found = re.subn(rf"^{re.escape(key)}: .*$", f"{key}: {value}", settings, flags=re.MULTILINE)
            assert found == 1, f"{key} is not set once in {TEMPLATES / 'opensearch.yml'}"
        (config / "opensearch.yml").write_text(settings)
        (config / "jvm.options").write_text((TEMPLATES / "jvm.options").read_text().replace("@LOG_DIR@", str(log)))
        shutil.copy(self._home / "config" / "log4j2.properties", config / "log4j2.properties")
        if self._user is not None:
            for path in [self._dir, *self._dir.rglob("*")]:
                os.chown(path, self._user.pw_uid, self._user.pw_gid)

    @property
    def log(self) -> Path:
        return self._dir / "log" / "opensearch.out"

    async def start(self, timeout_s: float = 120) -> None:
        """Start (again, on the same ports, with the data it had) and wait until the cluster is green or yellow."""
        # Should the test process die without closing the node, the node gets a SIGTERM: none outlives its test.
        command = ["setpriv", "--pdeathsig=TERM"]
        if self._user is not None:
            command += [f"--reuid={self._user.pw_uid}", f"--regid={self._user.pw_gid}", "--init-groups"]
        command.append(str(self._home / "bin" / "opensearch"))
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(self._dir),
            "LANG": "C.UTF-8",
            "OPENSEARCH_JAVA_HOME": str(self._java),
            "OPENSEARCH_PATH_CONF": str(self._dir / "config"),
            "OPENSEARCH_TMPDIR": str(self._dir / "tmp"),
            # A small heap; the C1 compiler alone starts the node sooner, which a short-lived test node wants.
            "OPENSEARCH_JAVA_OPTS": f"-Xms{HEAP} -Xmx{HEAP} -XX:TieredStopAtLevel=1",
        }
        with self.log.open("ab") as out:
            self._process = await asyncio.create_subprocess_exec(
                *command, cwd=self._home, env=env, stdin=asyncio.subprocess.DEVNULL, stdout=out, stderr=out
            )
        async with httpx.AsyncClient(base_url=self.url, timeout=3) as client:
            try:
                async with asyncio.timeout(timeout_s):
                    while True:
                        if self._process.returncode is not None:
                            raise AssertionError(f"OpenSearch exited with {self._process.returncode}:\n{self.tail()}")
                        with contextlib.suppress(httpx.TransportError):
                            health = await client.get("/_cluster/health")
                            if health.status_code == 200 and health.json()["status"] in ("green", "yellow"):
                                return
                        await asyncio.sleep(0.5)
            except TimeoutError:
                raise AssertionError(f"OpenSearch not ready after {timeout_s}s:\n{self.tail()}") from None

    async def stop(self) -> None:
        """SIGTERM and wait (SIGKILL after a minute): connections are refused until ``start``."""
        process = self._process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGCONT)  # a frozen node could not hear the SIGTERM
            process.terminate()
        try:
            await asyncio.wait_for(process.wait(), timeout=60)
        except TimeoutError:
            process.kill()
            await process.wait()

    def freeze(self) -> None:
        """SIGSTOP: connections are accepted but nothing answers (a hung node or a partition)."""
        assert self._process is not None
        self._process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self._process is not None
        self._process.send_signal(signal.SIGCONT)

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:]) if self.log.exists() else ""

    async def close(self) -> None:
        """Stop the node, keep its log beside the test's other logs, and remove its folders."""
        await self.stop()
        with contextlib.suppress(OSError):
            shutil.copy(self.log, self._logs / "opensearch.out")
        shutil.rmtree(self._dir, ignore_errors=True)
