"""Render the fault suite's results ($FAULTS_RESULTS, one JSON line per scenario) as the table in
docs/reliability.md. Run by `make faults`."""

from __future__ import annotations

import json
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

INVARIANTS = {
    "recorded once or dead-lettered with a reason": "recorded once / dead-lettered",
    "projections equal a rebuild": "= rebuild",
    "one task id per (sample, scenario, run)": "1 task id per run",
    "every issued task reached a bound queue": "tasks delivered",
    "nothing left unacknowledged": "nothing unacked",
}


def table(rows: list[dict[str, object]]) -> str:
    head = ["scenario", "messages", "faults injected", *INVARIANTS.values(), "time to recover"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        results = dict(row["invariants"])  # type: ignore[call-overload]
        cells = ["holds" if results.get(name) else "BROKEN" for name in INVARIANTS]
        recovery = row.get("recovery_seconds")
        took = f"{float(recovery):.1f} s" if isinstance(recovery, int | float) else "-"
        lines.append(f"| {row['scenario']} | {row['messages']:,} | {row['faults']} | " + " | ".join(cells)
                     + f" | {took} |")  # fmt: skip
    return "\n".join(lines)


def main(results: Path) -> None:
    rows = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
    scale = ", ".join(sorted({str(r.get("scale")) for r in rows}))
    print(f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {scale} variants, on {platform.node() or 'this machine'} "
          f"({platform.machine()}, Python {platform.python_version()}).\n")  # fmt: skip
    print(table(rows))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
