"""`make bench` rewrites the full table in bench/README.md and a short one in the
project README, each between its markers."""

from __future__ import annotations

import shutil
from pathlib import Path

from bench import report

ROOT = Path(__file__).resolve().parents[2]


def test_each_readme_has_its_markers_and_both_are_rewritten(tmp_path: Path) -> None:
    latest = report._latest(report._history(ROOT / "bench" / "results", "2026-12-01"))
    readme, bench_readme = tmp_path / "README.md", tmp_path / "bench-README.md"
    shutil.copy(ROOT / "README.md", readme)
    shutil.copy(ROOT / "bench" / "README.md", bench_readme)
    for path, start, end in (
        (readme, report.BRIEF_START, report.BRIEF_END),
        (bench_readme, report.README_START, report.README_END),
    ):
        text = path.read_text()
        head, rest = text.split(start)
        _, tail = rest.split(end)
        path.write_text(f"{head}{start}\nstale\n{end}{tail}")

    assert report.update_readme(bench_readme, latest)
    assert report.update_readme_brief(readme, latest)

    full, brief = bench_readme.read_text(), readme.read_text()
    assert "stale" not in full
    assert "stale" not in brief
    assert report.render_summary(latest) in full
    assert report.render_brief(latest) in brief
    # The project README stays short: one row per scenario, no 256-connection rows.
    assert report.README_START not in brief
    rows = brief.split(report.BRIEF_START)[1].split(report.BRIEF_END)[0].strip().splitlines()
    assert len(rows) == 2 + len(report.SCENARIO_ORDER)
    assert all("-" not in row.split("|")[2] for row in rows[2:])  # every figure present
