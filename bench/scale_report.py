"""bench/README.md's table of bench_scale results, rendered from bench/results/scale-*.json
(between its scale markers) each time bench_scale writes a result, with the growth per 10x
vaults of each measure between sizes ten times apart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
README = Path(__file__).resolve().parent / "README.md"
START, END = "<!-- scale:start -->", "<!-- scale:end -->"

# (label, path in the result, unit); growth is reported for each
MEASURES: list[tuple[str, tuple[str, ...], str]] = [
    ("ListVaults full walk, alone", ("alone", "list_walk", "seconds"), "s"),
    ("ListVaults page (500) p99, alone", ("alone", "list_walk", "page", "p99_ms"), "ms"),
    ("GetTvl p50, alone", ("alone", "get_tvl", "p50_ms"), "ms"),
    ("GetTvl p99, alone", ("alone", "get_tvl", "p99_ms"), "ms"),
    ("GetVault p99, alone", ("alone", "get_vault", "p99_ms"), "ms"),
    ("reconciliation, alone", ("alone", "reconciliation", "seconds"), "s"),
    ("GetVault p50, under load (300/s on a schedule)", ("under_load", "get_vault", "p50_ms"), "ms"),
    ("GetVault p99, under load (300/s on a schedule)", ("under_load", "get_vault", "p99_ms"), "ms"),
    ("GetVault p99, under load: the control (a lone server, from memory)",
     ("under_load", "get_vault_control", "p99_ms"), "ms"),
    ("GetVault handled in over 10 ms, under load (calls)",
     ("under_load", "vault_manager", "get_vault_handler", "over_0.01_s"), ""),
    ("GetTvl p99, under load", ("under_load", "get_tvl", "p99_ms"), "ms"),
    ("deposit p99, under load", ("under_load", "deposit", "p99_ms"), "ms"),
    ("cores busy, under load (share)", ("under_load", "cpu", "busy_share"), ""),
    ("vault_manager waiting for a core, under load",
     ("under_load", "cpu", "processes", "vault_manager", "wait_s"), "s"),
    ("ListVaults page p99, under load", ("under_load", "list_page", "p99_ms"), "ms"),
    ("ListVaults walk median, under load", ("under_load", "list_walks", "median_seconds"), "s"),
    ("reconciliation, under load", ("under_load", "reconciliation", "seconds"), "s"),
    ("reconciliation mismatches, under load", ("under_load", "reconciliation", "mismatches"), ""),
    ("snapshot pass", ("snapshot_pass", "seconds"), "s"),
    ("snapshot rows per pass", ("snapshot_pass", "rows"), ""),
    ("population (vaults/s)", ("population", "vaults_per_second"), ""),
    ("catch-up: indexer events/s", ("catch_up", "indexer_events_per_second"), ""),
    ("catch-up: node events/s (getTransaction)", ("catch_up", "node_events_per_second"), ""),
    ("catch-up: indexer ÷ node (json)", ("catch_up", "indexer_over_node"), ""),
    ("catch-up: indexer ÷ node (base64)", ("catch_up", "indexer_over_node_base64"), ""),
]


def _get(result: dict[str, Any], path: tuple[str, ...]) -> float | None:
    value: Any = result
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value if isinstance(value, (int, float)) else None


def _shown(value: float | None, unit: str) -> str:
    if value is None:
        return "–"
    text = f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"
    return f"{text} {unit}".strip()


def render() -> str:
    results = sorted((json.loads(p.read_text()) for p in RESULTS.glob("scale-*.json")), key=lambda r: r["vaults"])
    if not results:
        return "No bench_scale result yet."
    sizes = [r["vaults"] for r in results]
    pairs = [(a, b) for a in results for b in results if b["vaults"] == 10 * a["vaults"]]
    head = ["measure", *(f"{n:,} vaults" for n in sizes),
            *(f"growth {a['vaults']:,} → {b['vaults']:,}" for a, b in pairs)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, path, unit in MEASURES:
        cells = [_shown(_get(r, path), unit) for r in results]
        for a, b in pairs:
            x, y = _get(a, path), _get(b, path)
            cells.append(f"{y / x:.2f}×" if x and y is not None else "–")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def update_readme() -> None:
    text = README.read_text() if README.exists() else ""
    if START not in text or END not in text:
        return
    before, rest = text.split(START, 1)
    _, after = rest.split(END, 1)
    README.write_text(f"{before}{START}\n{render()}\n{END}{after}")


if __name__ == "__main__":
    update_readme()
    print(render())
