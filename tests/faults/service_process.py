"""The service as a user runs it: `sample-ledger run` in a subprocess, killed and restarted on command."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

RUN = [sys.executable, "-m", "service.ops.cli", "run"]


class ServiceProcess:
    """One replica. Its JSON log lines go to `log_path`, appended across restarts."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self._env = env
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        assert self._process is None or self._process.poll() is not None, "already running"
        log = self.log_path.open("ab")
        self._process = subprocess.Popen(RUN, env=self._env, stdout=log, stderr=log)
        log.close()
        self.starts += 1

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def exit_code(self) -> int | None:
        return None if self._process is None else self._process.poll()

    def kill(self) -> None:
        """kill -9: no shutdown hook runs, nothing is flushed."""
        if self.running():
            assert self._process is not None
            self._process.send_signal(signal.SIGKILL)
            self._process.wait(timeout=30)

    async def stop(self, timeout: float = 40) -> int:
        """SIGTERM and wait for the graceful stop; the exit code."""
        if self._process is None:
            return 0
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
        for _ in range(int(timeout * 10)):
            if self._process.poll() is not None:
                return self._process.returncode
            await asyncio.sleep(0.1)
        self._process.kill()
        return self._process.wait()

    def rss_kib(self) -> int:
        """Resident memory of the running replica, from /proc."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS line")

    def log_events(self) -> list[dict[str, object]]:
        """Every JSON log line so far (lines that are not JSON, e.g. a traceback's, are skipped)."""
        events = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    events.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return events

    def noisy_seconds(self, threshold: int = 20) -> int:
        """Seconds in which more than `threshold` warnings and errors were logged. A fault gives a burst
        when it strikes (every in-flight message notices at once); a retry loop without backoff keeps
        it up second after second. Per-message info lines do not count: they follow the load."""
        troubles = (e for e in self.log_events() if e.get("level") in ("warning", "error", "critical"))
        per_second = Counter(str(e.get("timestamp", ""))[:19] for e in troubles)
        return sum(1 for count in per_second.values() if count > threshold)


def service_env(database_url: str, amqp_url: str, prefix: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "AMQP_URL": amqp_url,
        "AMQP_PREFIX": prefix,
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "INFO",
        "CHATBOT_QUIET_HOURS": "off",
        "CHATBOT_POLL_SECONDS": "0.2",
        "PROJECTION_IDLE_POLL_SECONDS": "0.1",
        **extra,
    }
