"""The scale benchmark's results: one ``Result`` per measured figure, the table, the machine.

A figure that could not be measured (a wait ran out, a process failed) is a
``Result`` too, with ``met`` False and the reason as its figure ("not reached
after 600 s"), so the table always has every row that was asked for.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Settings:
    """What one benchmark run was asked to do (the command-line options)."""

    users: list[int]
    only: tuple[str, ...] | None = None  # the rows to run (None: all)
    steady_seconds: float = 180.0
    startup_timeout: float = 600.0
    restart_timeout: float = 120.0
    quiet_seconds: float = 35.0
    due_after: float = 2.0
    due_spacing: float = 30.0
    sigterm_after: float = 1.5
    latency: float = 0.0
    edits: int = 6
    edit_window: float = 30.0
    edit_timeout: float = 60.0
    lag_timeout: float = 900.0
    seed: int = 42
    keep: bool = False

    def wants(self, row: str) -> bool:
        return self.only is None or row in self.only


@dataclass
class Result:
    """One line of the table."""

    row: str
    users: str
    what: str
    figure: str
    goal: str
    floor: str = "-"
    met: bool | None = None
    value: float | None = None
    unit: str = ""
    notes: list[str] = field(default_factory=list)


def not_reached(row: str, users: str, what: str, goal: str, seconds: float, **kw: Any) -> Result:
    return Result(row, users, what, f"not reached after {seconds:.0f} s", goal, met=False, **kw)


def failed(row: str, users: str, what: str, goal: str, why: str) -> Result:
    return Result(row, users, what, f"not measured: {why}", goal, met=False)


def seconds(value: float) -> str:
    if value < 0.01:
        return f"{value * 1e6:.1f} µs" if value < 0.001 else f"{value * 1000:.2f} ms"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    return f"{value:.1f} s" if value < 100 else f"{value:.0f} s"


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine() -> dict[str, Any]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
        "load_average": [round(x, 2) for x in load],
    }


def machine_line(info: dict[str, Any]) -> str:
    load = ", ".join(f"{x:.2f}" for x in info["load_average"])
    return (
        f"machine: {info['cpu']}, {info['cores']} cores, Python {info['python']}, "
        f"{info['system']}, load average {load}"
    )


def table(results: list[Result]) -> str:
    """The results as a fixed-width table, with each result's notes beneath it."""
    head = ("row", "N", "what", "figure", "goal", "floor", "met")
    rows = [
        (
            r.row,
            r.users,
            r.what,
            r.figure,
            r.goal,
            r.floor,
            "-" if r.met is None else ("yes" if r.met else "NO"),
        )
        for r in results
    ]
    widths = [max(len(str(x)) for x in column) for column in zip(head, *rows, strict=True)]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    out = [line(head), line(tuple("-" * w for w in widths))]
    for result, cells in zip(results, rows, strict=True):
        out.append(line(cells))
        out += [f"      {note}" for note in result.notes]
    return "\n".join(out)


def write_json(
    path: Path, info: dict[str, Any], settings: dict[str, Any], results: list[Result]
) -> None:
    doc = {"machine": info, "settings": settings, "results": [asdict(r) for r in results]}
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
