"""latest.png: throughput and latency per scenario, with each row's baseline drawn in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.patches import Rectangle

PASS, FAIL, NEUTRAL, BASE = "#2e7d32", "#c62828", "#1565c0", "#9e9e9e"


def _colour(record: dict[str, Any]) -> str:
    verdicts = [t["pass"] for t in record.get("targets", []) if t["pass"] is not None]
    if not verdicts:
        return NEUTRAL
    return PASS if all(verdicts) else FAIL


def _label(record: dict[str, Any]) -> str:
    parts = [record["scenario"], record.get("db") or "", record.get("algorithm") or ""]
    text = " ".join(p for p in parts if p)
    return f"{text}  c{record['connections']}"


def _baseline_row(base: dict[str, Any], scenario: str) -> dict[str, Any]:
    block = f"[{base.get('db')} {base.get('algorithm')}]"
    if base["scenario"] == "hello":
        return {
            "label": f"BASELINE hello {block}  c{base['connections']}",
            "rps": base["ok_rps"],
            "p50": base["latency_ms"]["p50"],
            "p99": base["latency_ms"]["p99"],
            "colour": BASE,
        }
    if base["scenario"] == "argon2":
        kind = "hash" if scenario == "signup" else "verify"
        return {
            "label": f"BASELINE argon2 {kind} {block}",
            "rps": base[f"{kind}_per_s"],
            "colour": BASE,
        }
    return {
        "label": f"BASELINE sign ({base['processes']} proc) {block}",
        "rps": base["per_s"],
        "colour": BASE,
    }


BASELINE_OF = {"verify": "hello", "jwks": "hello", "login": "argon2", "signup": "argon2"}


def draw(records: list[dict[str, Any]], path: Path, *, title: str) -> None:
    """One row per measurement; each group of rows is preceded by its baseline."""
    baselines: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in records:
        if r.get("kind") == "baseline":
            key = (r["scenario"], r.get("db"), r.get("algorithm"), r.get("run_id"))
            baselines.setdefault(key, []).append(r)
    rows: list[dict[str, Any]] = []
    shown: set[tuple[Any, ...]] = set()
    for record in records:
        if record.get("kind") != "http":
            continue
        scenario = record["scenario"]
        key = (
            BASELINE_OF.get(scenario, "sign"),
            record.get("db"),
            record.get("algorithm"),
            record.get("run_id"),
        )
        group = (scenario, *key)
        if group not in shown and key in baselines:
            rows.extend(_baseline_row(base, scenario) for base in baselines[key])
            shown.add(group)
        base = record.get("baseline") or {}
        rows.append(
            {
                "label": _label(record),
                "rps": record["ok_rps"],
                "p50": record["latency_ms"]["p50"],
                "p99": record["latency_ms"]["p99"],
                "baseline": base.get("per_s"),
                "baseline_p99": (
                    base.get("p99_ms")
                    if record["scenario"] == "verify" and not record.get("stress")
                    else None
                ),
                "errors": record["errors"]["total"],
                "colour": _colour(record),
                "stress": record.get("stress", False),
            }
        )
    if not rows:
        return
    height = 1.6 + 0.34 * len(rows)
    figure, (left, right) = plt.subplots(
        1, 2, figsize=(15, height), sharey=True, gridspec_kw={"width_ratios": [1.2, 1]}
    )
    positions = list(range(len(rows)))[::-1]
    for y, row in zip(positions, rows, strict=True):
        hatch = "//" if row.get("stress") else None
        left.barh(y, row["rps"], color=row["colour"], hatch=hatch, edgecolor="white", height=0.7)
        text = f" {row['rps']:,.0f}"
        if row.get("errors"):
            text += f"  ({row['errors']} errors)"
        left.text(row["rps"], y, text, va="center", fontsize=8)
        if row.get("baseline"):
            left.plot([row["baseline"]] * 2, [y - 0.42, y + 0.42], color="black", linewidth=2)
        if "p99" in row:
            right.barh(y, row["p99"], color=row["colour"], alpha=0.45, height=0.7)
            right.barh(y, row["p50"], color=row["colour"], height=0.35)
            right.text(
                row["p99"], y, f" p50 {row['p50']:,.1f} / p99 {row['p99']:,.1f}", va="center",
                fontsize=8,
            )  # fmt: skip
            if row.get("baseline_p99"):
                limit = 2 * row["baseline_p99"]
                right.plot([limit] * 2, [y - 0.42, y + 0.42], color="black", linewidth=2)
    left.set_xscale("log")
    left.set_xlabel("throughput: 2xx responses/s or operations/s (log scale)")
    left.set_title("Throughput. Black tick: the row's baseline, same run", fontsize=10)
    right.set_xscale("log")
    right.set_xlabel("latency, ms (log scale): dark p50, light p99")
    right.axvline(1000, color=FAIL, linestyle="--", linewidth=1)
    right.set_title("Latency. Red dashed: 1 s; black tick: 2x hello p99", fontsize=10)
    left.set_yticks(positions, [row["label"] for row in rows], fontsize=8)
    for axis in (left, right):
        axis.grid(axis="x", which="both", alpha=0.25)
        axis.margins(x=0.25)
    handles = [
        Rectangle((0, 0), 1, 1, color=PASS),
        Rectangle((0, 0), 1, 1, color=FAIL),
        Rectangle((0, 0), 1, 1, color=NEUTRAL),
        Rectangle((0, 0), 1, 1, color=BASE),
        Rectangle((0, 0), 1, 1, facecolor="white", edgecolor="black", hatch="//"),
    ]
    figure.legend(
        handles,
        [
            "meets its targets",
            "misses a target",
            "no target",
            "baseline",
            "stress (high connections)",
        ],
        loc="upper center",
        ncol=5,
        fontsize=8,
        bbox_to_anchor=(0.5, 1 - 0.35 / height),
    )
    figure.suptitle(title, fontsize=12, y=1 - 0.08 / height)
    figure.tight_layout(rect=(0, 0, 1, 1 - 0.7 / height))
    figure.savefig(path, dpi=110)
    plt.close(figure)
