"""Where the machine's CPU went during a workload: the service, PostgreSQL, RabbitMQ, the benchmark
itself, and everything else (on a shared machine, other work competes with the service for the same
cores). From /proc/<pid>/stat, so approximate. A process that ended in between counts through its parent
once the parent has reaped it (the kernel adds its CPU to the parent's children's times): a PostgreSQL
backend through the postmaster, so that the service's replaced connections are not lost, nor their
CPU taken off the total as a negative."""

from __future__ import annotations

import os
from collections.abc import Collection
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")
GROUPS = ("service", "postgres", "rabbitmq", "benchmark", "other")


def _group(pid: int, command: str, service_pids: Collection[int]) -> str:
    if pid in service_pids:
        return "service"
    if pid == os.getpid():
        return "benchmark"
    if command.startswith("postgres"):
        return "postgres"
    if command in ("beam.smp", "erl_child_setup", "epmd", "inet_gethost"):
        return "rabbitmq"
    return "other"


def cpu_seconds(service_pids: Collection[int]) -> dict[str, float]:
    """User + system CPU seconds so far, per group, of every process alive now and of the children it
    has reaped (every replica of the service counts as the service)."""
    used = dict.fromkeys(GROUPS, 0.0)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # ended while we looked
            continue
        command = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        own, reaped = int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14])  # utime+stime, cutime+cstime
        used[_group(int(entry.name), command, service_pids)] += (own + reaped) / TICKS
    return used


def spent(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {group: round(max(after[group] - before[group], 0.0), 1) for group in GROUPS}
