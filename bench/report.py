"""The results as one JSON document, and the table printed from it.

Every figure is `{"value", "unit", "floor", "floor_is", "ratio"}`: ratio = value / floor, so a rate's
ratio is the share of its floor the service reaches and a latency's or memory's ratio is how many
times its floor it takes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.floors import BrokerFloor, DatabaseFloor
from bench.passes import HeldFigures, Latency, LiveFigures
from bench.stats import PERCENTILES, percentiles_ms
from bench.workloads import Workload

Json = dict[str, Any]
MIB = 1024
UPSERT_FLOOR = "executemany INSERT…ON CONFLICT"
CPU_LABELS = {"service": "svc", "postgres": "pg", "rabbitmq": "mq", "benchmark": "bench"}  # the table's narrow column
SLOWEST_FLOOR = "the slower of bare consume+ack and executemany INSERT…ON CONFLICT"


@dataclass(frozen=True)
class WorkloadResults:
    workload: Workload
    broker: BrokerFloor
    database: DatabaseFloor
    live: LiveFigures
    held: HeldFigures


def rate(units: int, unit: str, seconds: float, floor_seconds: float, floor_is: str) -> Json:
    value, floor = units / seconds, units / floor_seconds
    return {"value": round(value, 1), "unit": f"{unit}/s", "seconds": round(seconds, 3), "floor": round(floor, 1),
            "floor_is": floor_is, "ratio": round(value / floor, 4)}  # fmt: skip


def latency(latencies: Sequence[Latency], round_trips: Sequence[float]) -> Json:
    value, floor = percentiles_ms([lat.seconds for lat in latencies]), percentiles_ms(round_trips)
    ratio = None if value is None or floor is None else {p: round(value[p] / max(floor[p], 0.1), 1) for p in value}
    return {"value": value, "unit": "ms", "count": len(latencies), "floor": floor,
            "floor_is": "broker round trip, one message at a time", "ratio": ratio}  # fmt: skip


def memory(kib: int, idle_kib: int, measured: str) -> Json:
    return {"value": round(kib / MIB, 1), "unit": "MiB", "measured": measured, "floor": round(idle_kib / MIB, 1),
            "floor_is": "the service's resident memory once started, before any workload",
            "ratio": round(kib / idle_kib, 2)}  # fmt: skip


def peak_memory(live: LiveFigures, idle_kib: int) -> Json:
    since = "this workload began" if live.peak_is_per_workload else "the service started"
    return memory(live.peak_rss_kib, idle_kib, f"VmHWM: the peak since {since}")


def floors_json(results: WorkloadResults) -> Json:
    messages, broker, database = results.workload.messages, results.broker, results.database
    return {
        "messages": len(messages),
        "bytes_per_message": round(sum(len(m.body) for m in messages) / len(messages)),
        "publish_confirm_per_second": round(len(messages) / broker.publish_seconds, 1),
        "consume_ack_per_second": round(len(messages) / broker.consume_seconds, 1),
        "round_trip_ms": percentiles_ms(broker.round_trips),
        "rows": database.rows,
        "copy_rows_per_second": round(database.rows / database.copy_seconds, 1),
        "upsert_rows_per_second": round(database.rows / database.upsert_seconds, 1),
    }


def workload_json(results: WorkloadResults, idle_rss_kib: int) -> Json:
    w, live, held, broker, database = results.workload, results.live, results.held, results.broker, results.database
    # The pipeline cannot beat its slowest raw stage: taking the messages, or writing their rows.
    slowest_floor = max(broker.consume_seconds, database.upsert_seconds)
    return {
        "title": w.title,
        "description": w.description,
        "unit": w.unit,
        "units": w.units,
        "messages": len(w.messages),
        "end_to_end": rate(w.units, w.unit, live.seconds, slowest_floor, SLOWEST_FLOOR),
        "ingest_only": rate(w.units, w.unit, held.ingest_seconds, broker.consume_seconds, "bare consume+ack"),
        "catch_up_only": rate(w.units, w.unit, held.catch_up_seconds, database.upsert_seconds, UPSERT_FLOOR),
        "publish_to_visible": latency(live.visible, broker.round_trips),
        "publish_to_task": latency(live.tasks, broker.round_trips),
        "peak_rss": peak_memory(live, idle_rss_kib),
        "publisher_messages_per_second": round(len(w.messages) / live.publish_seconds, 1),
        "catch_up_seconds_by_projection": held.catch_up_by_projection,
        "events_appended": live.events_by_type,
        "cpu_seconds": live.cpu_seconds,
    }


def write(document: Json, results_dir: Path, started: datetime) -> Path:
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"{started:%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    return path


# The table ------------------------------------------------------------------------------------------


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.1f}"


def _times(ratio: float) -> str:
    if ratio >= 10:
        return f"×{ratio:,.0f}"
    return f"×{ratio:.1f}" if ratio >= 1 else f"×{ratio:.2f}" if ratio >= 0.01 else f"×{ratio:.3f}"


def _figure(figure: Json | None) -> str:
    if not figure or figure.get("value") is None:
        return "–"
    return f"{_number(figure['value'])} {_times(figure['ratio'])}"


def _percentile(figure: Json, p: str) -> str:
    if figure["value"] is None:
        return "–"
    return f"{_number(figure['value'][p])} {_times(figure['ratio'][p])}"


Rows = list[tuple[str, list[str]]]


def _workload_rows(workloads: dict[str, Json]) -> Rows:
    keys = list(workloads)
    groups = "/".join(CPU_LABELS.get(g, g) for g in workloads[keys[0]]["cpu_seconds"])

    def each(cell: Any) -> list[str]:
        return [cell(workloads[key]) for key in keys]

    rows: Rows = [
        ("", [f"({k}) {w['title']}" for k, w in workloads.items()]),
        ("unit", each(lambda w: w["unit"])),
        ("end to end /s", each(lambda w: _figure(w["end_to_end"]))),
        ("ingest only /s", each(lambda w: _figure(w["ingest_only"]))),
        ("catch-up only /s", each(lambda w: _figure(w["catch_up_only"]))),
    ]
    for figure, label in (("publish_to_visible", "publish → visible"), ("publish_to_task", "publish → task")):
        rows += [(f"{label} p{p} ms", each(lambda w, f=figure, p=p: _percentile(w[f], f"p{p}"))) for p in PERCENTILES]
    rows += [
        ("tasks delivered", each(lambda w: f"{w['publish_to_task']['count']:,}")),
        ("log events appended", each(lambda w: f"{sum(w['events_appended'].values()):,}")),
        (f"CPU s: {groups}", each(lambda w: "/".join(map(_number, w["cpu_seconds"].values())))),
        ("peak RSS MiB", each(lambda w: _figure(w["peak_rss"]))),
    ]
    return rows


def _floor_rows(floors: dict[str, Json]) -> Rows:
    def each(cell: Any) -> list[str]:
        return [cell(floor) for floor in floors.values()]

    return [
        ("floors", each(lambda f: "")),
        ("  publish+confirm msg/s", each(lambda f: _number(f["publish_confirm_per_second"]))),
        ("  consume+ack msg/s", each(lambda f: _number(f["consume_ack_per_second"]))),
        ("  round trip p50/p95/p99 ms", each(lambda f: " / ".join(map(_number, f["round_trip_ms"].values())))),
        ("  COPY rows/s", each(lambda f: _number(f["copy_rows_per_second"]))),
        ("  INSERT…ON CONFLICT rows/s", each(lambda f: _number(f["upsert_rows_per_second"]))),
    ]


def _in_column(keys: list[str], key: str, rows: list[tuple[str, str]]) -> Rows:
    """Rows that have a figure for one workload only (growth: (a); soak: (d))."""
    column = keys.index(key) if key in keys else 0
    return [(label, [cell if i == column else "" for i in range(len(keys))]) for label, cell in rows]


def _growth_rows(growth: Json) -> list[tuple[str, str]]:
    return [
        (f"(a) end to end /s, {step['events_in_log']:,} in log",
         f"{_figure(step['end_to_end'])} ({step['of_empty_log']:.2f} of empty)")
        for step in growth["steps"]
    ]  # fmt: skip


def _soak_rows(soak: Json) -> list[tuple[str, str]]:
    def start_to_end(name: str) -> str:
        return f"{_figure(soak[f'{name}_start'])} → {_figure(soak[f'{name}_end'])}"

    return [
        (f"soak {soak['minutes']:g} min at {soak['rate_per_second']:,.0f} ev/s", f"{soak['messages']:,} messages"),
        ("  visible p99 ms, start → end", start_to_end("visible_p99")),
        ("  task p99 ms, start → end", start_to_end("task_p99")),
        ("  RSS MiB, start → end", start_to_end("rss")),
        *_cpu_per_message(soak.get("cpu_ms_per_message")),
    ]


def _cpu_per_message(cpu: Json | None) -> list[tuple[str, str]]:
    if not cpu:  # a result written before the soak measured it
        return []
    return [("  CPU ms a message: svc/pg/mq", f"{cpu['service']:.2f}/{cpu['postgres']:.2f}/{cpu['rabbitmq']:.2f}")]


def _rows(document: Json) -> Rows:
    keys = list(document["workloads"])
    rows = _workload_rows(document["workloads"]) + _floor_rows(document["floors"])
    if document.get("growth"):
        rows += _in_column(keys, "a", _growth_rows(document["growth"]))
    if document.get("soak"):
        rows += _in_column(keys, "d", _soak_rows(document["soak"]))
    return rows


def _server_line(settings: dict[str, str] | None) -> list[str]:
    if not settings:  # a JSON written before the settings were recorded
        return []
    return ["PostgreSQL " + " · ".join(f"{name} {value}" for name, value in settings.items())]


def _replicas(document: Json) -> str:
    replicas = document.get("replicas", 1)  # absent in a JSON written before there was a choice
    return f"{replicas} service replicas · " if replicas > 1 else ""


def render(document: Json) -> str:
    rows = _rows(document)
    label_width = max(len(label) for label, _ in rows)
    widths = [max(len(cells[i]) for _, cells in rows) for i in range(len(rows[0][1]))]
    sizes = " · ".join(f"({k}) {w['description']}" for k, w in document["workloads"].items())
    lines = [
        f"Sample Ledger benchmark · {document['started_at']} · seed {document['seed']} · "
        f"{document['machine']['cores']} cores · {_replicas(document)}{document['isolation']}",
        *_server_line(document["machine"].get("postgres")),
        f"sizes: {sizes}",
        "×: figure ÷ floor (rates: share of the floor reached; latency: times the broker round trip; "
        "RSS: times the idle service)",
        "",
    ]
    for label, cells in rows:
        line = label.ljust(label_width) + "  " + "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True))
        lines.append(line.rstrip())
    return "\n".join(lines)
