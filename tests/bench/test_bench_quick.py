"""The benchmark's quick mode, end to end, so that it cannot rot: `python -m bench --quick` runs the real
service on its own database and vhost, prints the table and writes the JSON with every figure present
and positive. Nothing here looks at how fast anything was."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import make_url

pytestmark = pytest.mark.integration

REPOSITORY = Path(__file__).resolve().parents[2]
FIGURES = ("end_to_end", "ingest_only", "catch_up_only", "publish_to_visible", "publish_to_task", "peak_rss")
FLOORS = ("publish_confirm_per_second", "consume_ack_per_second", "copy_rows_per_second", "upsert_rows_per_second")


def numbers(value: Any) -> Iterator[float]:
    """A figure's value, floor or ratio: one number, or one per percentile."""
    if isinstance(value, dict):
        yield from value.values()
    else:
        yield value


@pytest.mark.parametrize("replicas", [1, 2])
def test_quick_mode_prints_the_table_and_writes_every_figure(
    server_url: str, amqp_url: str, tmp_path: Path, replicas: int
) -> None:
    env = {**os.environ, "DATABASE_URL": server_url, "AMQP_URL": amqp_url}
    if replicas == 2:  # and with the environment `make bench` gives it: the ledger's roles, the server's superuser
        ledger = make_url(server_url).set(database="sample_ledger_not_the_benchmarks")
        env |= {
            "DATABASE_ADMIN_URL": server_url,
            "DATABASE_URL": ledger.set(username="no_such_service").render_as_string(hide_password=False),
            "DATABASE_OWNER_URL": ledger.set(username="no_such_owner").render_as_string(hide_password=False),
        }
    run = subprocess.run([sys.executable, "-m", "bench", "--quick", "--replicas", str(replicas),
                          "--results-dir", str(tmp_path)], cwd=REPOSITORY, env=env, capture_output=True, text=True,
                         timeout=600)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]

    (path,) = tmp_path.glob("*.json")
    document = json.loads(path.read_text())
    assert document["replicas"] == replicas
    assert ("2 service replicas" in run.stdout.splitlines()[0]) == (replicas == 2)
    assert list(document["workloads"]) == ["a", "b", "c", "d"]
    for key, workload in document["workloads"].items():
        for name in FIGURES:
            figure = workload[name]
            for part in ("value", "floor", "ratio"):
                assert figure[part] is not None, (key, name, part)
                assert all(n > 0 for n in numbers(figure[part])), (key, name, part, figure[part])
        floors = document["floors"][key]
        assert all(floors[name] > 0 for name in FLOORS), (key, floors)
        assert all(ms > 0 for ms in floors["round_trip_ms"].values()), (key, floors)

    table = run.stdout
    for label in ("end to end /s", "ingest only /s", "catch-up only /s", "publish → visible p99 ms",
                  "publish → task p99 ms", "peak RSS MiB", "INSERT…ON CONFLICT rows/s"):  # fmt: skip
        assert label in table, label
    assert "–" not in table.split("sizes:")[1], "a figure is missing from the table"
    assert str(path) in table
