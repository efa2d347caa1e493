"""The service as deployed: `sample-ledger run` as a subprocess (the fault suite's `ServiceProcess`), with
the service's own defaults except for quiet hours, and its memory read from /proc."""

from __future__ import annotations

import os
from pathlib import Path

from bench.sandbox import Sandbox
from tests.faults.publisher import APP_KEY, APP_SECRET
from tests.faults.service_process import ServiceProcess, service_env

# The fault suite polls faster than the defaults so that its scenarios end sooner; a benchmark
# measures the defaults (unless the caller's environment sets them).
_FAULT_SUITE_TUNINGS = ("CHATBOT_POLL_SECONDS", "PROJECTION_IDLE_POLL_SECONDS")


def service_under_test(box: Sandbox, database_url: str, log_path: Path, **tunings: str) -> ServiceProcess:
    """A replica on `database_url` and the sandbox's broker names; webhooks are signature-checked
    (as in production) and quiet hours are off, so tasks go out whatever the time of day. `tunings`
    are knobs the benchmark sets for one stage; the caller's environment wins over them."""
    env = service_env(database_url, box.amqp_url, box.prefix, TIKTOK_APP_KEY=APP_KEY, TIKTOK_APP_SECRET=APP_SECRET)
    for knob in _FAULT_SUITE_TUNINGS:
        del env[knob]
    env.update(tunings)
    for knob in (*_FAULT_SUITE_TUNINGS, *tunings):
        if knob in os.environ:
            env[knob] = os.environ[knob]
    return ServiceProcess(env, log_path)


def memory_kib(pid: int, field: str) -> int:
    """A `Vm…` line of /proc/<pid>/status: VmRSS (resident now) or VmHWM (peak resident)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


def reset_peak_memory(pid: int) -> bool:
    """Start VmHWM afresh (Linux: 5 > clear_refs), so each workload gets its own peak; False where the
    kernel or our permissions do not allow it (the peak then runs from the process's start)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True
