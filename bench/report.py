"""Targets, and the three outputs: per-scenario JSON, latest.md and latest.png."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SCENARIO_ORDER = ("verify", "jwks", "refresh", "login", "signup")
BASELINE_ORDER = ("hello", "argon2", "sign")

# (target text, threshold): the targets, printed next to what was measured.
VERIFY_RATIO = 0.80
VERIFY_P99_FACTOR = 2.0
LOGIN_RATIO = 0.85
SIGNUP_RATIO = 0.80
REFRESH_MARIADB_RS256_RPS = 600.0
REFRESH_ES256_OVER_RS256 = 1.3
STRESS_P99_MS = 1000.0


def _target(name: str, passed: bool | None, measured: str) -> dict[str, Any]:
    return {"target": name, "measured": measured, "pass": passed}


def _baseline_for(record: dict[str, Any], pool: list[dict[str, Any]]) -> dict[str, Any] | None:
    scenario = record["scenario"]
    if scenario in ("verify", "jwks"):
        name, field = "hello", "ok_rps"
    elif scenario == "login":
        name, field = "argon2", "verify_per_s"
    elif scenario == "signup":
        name, field = "argon2", "hash_per_s"
    elif scenario == "refresh":
        name, field = "sign", "per_s"
    else:
        return None
    candidates = [
        base
        for base in pool
        if base.get("scenario") == name
        and base.get("kind") == "baseline"
        # The one measured in the same database block, just before the scenario.
        and base.get("db") == record["db"]
        and base.get("algorithm") == record["algorithm"]
    ]
    # hello at the same connection count when there is one (the stress level too).
    candidates.sort(key=lambda base: base.get("connections") != record["connections"])
    for base in candidates:
        label = {
            "hello": f"hello ({base.get('workers')} w, c{base.get('connections')})",
            "argon2": f"argon2 {field.split('_')[0]} ({base.get('threads')} threads)",
            "sign": f"sign {base.get('algorithm')} ({base.get('processes')} proc)",
        }[name]
        latency = base.get("latency_ms", {})
        found: dict[str, Any] = {"name": label, "per_s": base[field], "p99_ms": latency.get("p99")}
        return found
    return None


def _refresh_reference(
    record: dict[str, Any], current: list[dict[str, Any]], history: list[dict[str, Any]]
) -> dict[str, Any] | None:
    """The RS256 refresh on MariaDB to compare an ES256 one with: this run's, else
    the newest from today's earlier runs with the same workers and connections."""
    candidates: list[dict[str, Any]] = [*history, *current]
    # Same code first: others commit while we measure, and a comparison across two
    # versions of the refresh path says little about the algorithms.
    same_code = [c for c in candidates if c.get("src_digest") == record.get("src_digest")]
    for other in [*reversed(same_code), *reversed(candidates)]:
        if (
            other.get("kind") == "http"
            and other["scenario"] == "refresh"
            and other["db"] == "mariadb"
            and other["algorithm"] == "RS256"
            and other["workers"] == record["workers"]
            and other["connections"] == record["connections"]
        ):
            found: dict[str, Any] = other
            return found
    return None


def evaluate(records: list[dict[str, Any]], history: list[dict[str, Any]]) -> None:
    """Attach baseline, ratio and pass/fail targets to each HTTP record, in place."""
    for record in records:
        if record.get("kind") != "http" or record["scenario"] == "hello":
            continue
        rps = record["ok_rps"]
        p99 = record["latency_ms"]["p99"]
        errors = record["errors"]["total"]
        base = _baseline_for(record, records)
        record["baseline"] = base
        ratio = rps / base["per_s"] if base and base["per_s"] else None
        record["ratio"] = round(ratio, 3) if ratio is not None else None
        targets: list[dict[str, Any]] = []
        scenario = record["scenario"]
        if record["stress"]:
            targets.append(_target("zero errors", errors == 0, f"{errors} errors"))
            targets.append(
                _target(f"p99 < {STRESS_P99_MS:.0f} ms", p99 < STRESS_P99_MS, f"{p99:.1f} ms")
            )
        elif scenario == "verify":
            measured = f"{ratio:.2f}x" if ratio is not None else "no baseline"
            targets.append(
                _target(
                    f">= {VERIFY_RATIO:.0%} of hello req/s",
                    ratio >= VERIFY_RATIO if ratio is not None else None,
                    measured,
                )
            )
            hello_p99 = base["p99_ms"] if base else None
            targets.append(
                _target(
                    f"p99 <= {VERIFY_P99_FACTOR:g}x hello p99",
                    p99 <= VERIFY_P99_FACTOR * hello_p99 if hello_p99 else None,
                    f"{p99 / hello_p99:.2f}x ({p99:.1f} vs {hello_p99:.1f} ms)"
                    if hello_p99
                    else "no baseline",
                )
            )
        elif scenario in ("login", "signup"):
            threshold = LOGIN_RATIO if scenario == "login" else SIGNUP_RATIO
            kind = "verify" if scenario == "login" else "hash"
            targets.append(
                _target(
                    f">= {threshold:.0%} of argon2 {kind} ceiling",
                    ratio >= threshold if ratio is not None else None,
                    f"{ratio:.2f}x" if ratio is not None else "no baseline",
                )
            )
        elif scenario == "refresh" and record["db"] == "mariadb":
            if record["algorithm"] == "RS256":
                targets.append(
                    _target(
                        f">= {REFRESH_MARIADB_RS256_RPS:.0f} req/s (RS256, MariaDB)",
                        rps >= REFRESH_MARIADB_RS256_RPS,
                        f"{rps:.0f} req/s",
                    )
                )
            elif record["algorithm"] == "ES256":
                reference = _refresh_reference(record, records, history)
                if reference is None:
                    targets.append(_target("ES256 >= 1.3x RS256", None, "no RS256 run to compare"))
                else:
                    factor = rps / reference["ok_rps"]
                    record["compared_with"] = {
                        "started_at": reference["started_at"],
                        "ok_rps": reference["ok_rps"],
                    }
                    targets.append(
                        _target(
                            f"ES256 >= {REFRESH_ES256_OVER_RS256:g}x RS256 (MariaDB)",
                            factor >= REFRESH_ES256_OVER_RS256,
                            f"{factor:.2f}x ({rps:.0f} vs {reference['ok_rps']:.0f}"
                            + (
                                ", RS256 run on DIFFERENT code"
                                if reference.get("src_digest") != record.get("src_digest")
                                else ", same code"
                            )
                            + ")",
                        )
                    )
        record["targets"] = targets


# -- files ------------------------------------------------------------------------------


def _load_runs(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    runs = data.get("runs") if isinstance(data, dict) else None
    return runs if isinstance(runs, list) else []


def _history(results: Path, date: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(run meta, record) from every results file of ``date``, oldest run first."""
    pairs = []
    for path in sorted(results.glob(f"{date}-*.json")):
        for entry in _load_runs(path):
            for record in entry.get("records", []):
                pairs.append((entry["run"], record))
    pairs.sort(key=lambda pair: pair[0]["run_id"])
    return pairs


def write(results: Path, meta: dict[str, Any], records: list[dict[str, Any]]) -> list[Path]:
    date = meta["run_id"][:10]
    earlier = _history(results, date)
    evaluate(records, [r for _, r in earlier])
    for record in records:
        record["run_id"] = meta["run_id"]
    written = []
    by_scenario: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_scenario.setdefault(record["scenario"], []).append(record)
    for scenario, items in by_scenario.items():
        path = results / f"{date}-{scenario}.json"
        stored = _load_runs(path)
        stored.append({"run": meta, "records": items})
        path.write_text(json.dumps({"scenario": scenario, "runs": stored}, indent=2) + "\n")
        written.append(path)
    latest = _latest(earlier + [(meta, r) for r in records])
    runs: dict[str, dict[str, Any]] = {run["run_id"]: run for run, _ in earlier}
    runs[meta["run_id"]] = meta
    markdown = results / "latest.md"
    markdown.write_text(render_markdown(meta, latest, runs))
    written.append(markdown)
    chart = results / "latest.png"
    from bench.chart import draw

    draw(latest, chart, title=f"authgate load test, latest figures ({date})")
    written.append(chart)
    # Only the repository's own results/ feed the READMEs (not --results elsewhere,
    # nor the slower --profile runs under results/profiled/): bench/README.md gets
    # the full table, the project's README a few lines.
    if results.resolve() == DEFAULT_RESULTS.resolve():
        bench_readme = results.parent / "README.md"
        if update_readme(bench_readme, latest):
            written.append(bench_readme)
        readme = results.parent.parent / "README.md"
        if update_readme_brief(readme, latest):
            written.append(readme)
    return written


DEFAULT_RESULTS = Path(__file__).resolve().parent / "results"
README_START = "<!-- bench:summary:start -->"
README_END = "<!-- bench:summary:end -->"
BRIEF_START = "<!-- bench:brief:start -->"
BRIEF_END = "<!-- bench:brief:end -->"
BRIEF_CONNECTIONS = 64


def render_summary(latest: list[dict[str, Any]]) -> str:
    """The compact table the README shows: one row per scenario, database, algorithm
    and connection count, with its ratio to the same run's baseline and targets."""
    lines = [
        "| scenario | db | alg | conns | 2xx/s | p50 ms | p99 ms | errors | vs baseline "
        "| targets | run |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for record in latest:
        if record.get("kind") != "http":
            continue
        base = record.get("baseline")
        ratio = record.get("ratio")
        versus = f"{ratio:.2f}x {base['name']}" if base and ratio is not None else "-"
        lines.append(
            "| "
            + " | ".join(
                [
                    *_identity_cells(record),
                    _n(record["ok_rps"]),
                    _n(record["latency_ms"]["p50"], 1),
                    _n(record["latency_ms"]["p99"], 1),
                    str(record["errors"]["total"]),
                    versus,
                    _verdict(record.get("targets", [])),
                    record["run_id"],
                ]
            )
            + " |"
        )
    return "\n".join(lines)


def render_brief(latest: list[dict[str, Any]]) -> str:
    """The project README's lines: each scenario at 64 connections with RS256, per
    database, with its ratio to the same run's baseline."""
    lines = [
        f"| scenario ({BRIEF_CONNECTIONS} connections, RS256) | SQLite | MariaDB |",
        "|---|---|---|",
    ]
    for scenario in SCENARIO_ORDER:
        cells = []
        for db in ("sqlite", "mariadb"):
            found = [
                r
                for r in latest
                if r.get("kind") == "http"
                and r["scenario"] == scenario
                and r.get("db") == db
                and r.get("algorithm") == "RS256"
                and r.get("connections") == BRIEF_CONNECTIONS
            ]
            if not found:
                cells.append("-")
                continue
            record, base, ratio = found[0], found[0].get("baseline"), found[0].get("ratio")
            cell = f"{_n(record['ok_rps'], 0)}/s, p99 {_n(record['latency_ms']['p99'], 0)} ms"
            if base and ratio is not None:
                cell += f" ({ratio:.2f}x {base['name'].split(' (')[0]})"
            cells.append(cell)
        lines.append(f"| {scenario} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


def _replace_block(path: Path, start_marker: str, end_marker: str, body: str) -> bool:
    """Replace the text between two markers of ``path``; False if it has none."""
    if not path.exists():
        return False
    text = path.read_text()
    start, end = text.find(start_marker), text.find(end_marker)
    if start < 0 or end < start:
        return False
    block = f"{start_marker}\n{body}\n{end_marker}"
    path.write_text(text[:start] + block + text[end + len(end_marker) :])
    return True


def update_readme(readme: Path, latest: list[dict[str, Any]]) -> bool:
    """Replace the full table between bench/README.md's markers."""
    return _replace_block(readme, README_START, README_END, render_summary(latest))


def update_readme_brief(readme: Path, latest: list[dict[str, Any]]) -> bool:
    """Replace the short table between the project README's markers."""
    return _replace_block(readme, BRIEF_START, BRIEF_END, render_brief(latest))


def _key(record: dict[str, Any]) -> tuple[Any, ...]:
    if record.get("kind") == "baseline":
        return (
            "baseline",
            record["scenario"],
            record.get("db"),
            record.get("algorithm"),
            record.get("workers"),
            record.get("connections"),
        )
    return (
        record["scenario"],
        record.get("db"),
        record.get("algorithm"),
        record.get("workers"),
        record.get("connections"),
    )


def _latest(pairs: list[tuple[dict[str, Any], dict[str, Any]]]) -> list[dict[str, Any]]:
    """The newest record per configuration; a later run replaces an earlier one."""
    newest: dict[tuple[Any, ...], dict[str, Any]] = {}
    for run, record in pairs:
        newest[_key(record)] = {**record, "run_id": run["run_id"]}
    return sort_records(list(newest.values()))


def sort_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def order(record: dict[str, Any]) -> tuple[Any, ...]:
        scenario = record["scenario"]
        rank = SCENARIO_ORDER.index(scenario) if scenario in SCENARIO_ORDER else 99
        return (
            rank,
            record.get("db") or "",
            record.get("algorithm") or "",
            record.get("workers") or 0,
            record.get("connections") or 0,
        )

    return sorted(records, key=order)


# -- markdown ---------------------------------------------------------------------------


def _n(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def _identity_cells(record: dict[str, Any]) -> list[str]:
    """Which configuration a row is: scenario, database, algorithm, connections."""
    return [
        record["scenario"],
        record["db"] or "-",
        record["algorithm"] or "-",
        str(record["connections"]),
    ]


def _verdict(targets: list[dict[str, Any]]) -> str:
    cells = []
    for t in targets:
        mark = {True: "PASS", False: "**FAIL**", None: "n/a"}[t["pass"]]
        cells.append(f"{t['target']}: {t['measured']} {mark}")
    return "<br>".join(cells) if cells else "(no target)"


def _cpu_per_ok(split: dict[str, float]) -> str:
    if not split:
        return "-"
    digits = 2 if split["total"] < 10 else 1
    return (
        f"{split['total']:.{digits}f} ({split['event_loops']:.{digits}f} + "
        f"{max(0.0, split['other_threads']):.{digits}f})"
    )


def _runs_table(runs: dict[str, dict[str, Any]]) -> list[str]:
    lines = [
        "## Runs",
        "",
        "| run | started | settings | code | load avg at start | notes |",
        "|---|---|---|---|---|---|",
    ]
    for run_id, meta in sorted(runs.items()):
        settings = meta["settings"]
        machine = meta["machine"]
        changed = len(machine.get("git_changed_files") or [])
        code = f"`{machine['git_commit'][:10]}`" + (f" + {changed} changed" if changed else "")
        if settings.get("src_digests"):
            code += f", src {', '.join(settings['src_digests'])}"
        what = (
            f"{','.join(settings['dbs'])}; {','.join(settings['algorithms'])}; "
            f"{','.join(settings['scenarios'])}; {settings['workers']} workers; "
            f"c{settings['connections']}"
            + (f"/c{settings['stress_connections']}" if settings["stress_connections"] else "")
            + f"; {settings['duration_s']:g} s"
        )
        lines.append(
            f"| {run_id} | {meta['started_at']} | {what} | {code} | "
            f"{' / '.join(f'{v:.2f}' for v in meta['loadavg_start'])} | "
            f"{'; '.join(meta.get('notes') or []) or '-'} |"
        )
    return lines


def render_markdown(
    meta: dict[str, Any], latest: list[dict[str, Any]], runs: dict[str, dict[str, Any]]
) -> str:
    settings = meta["settings"]
    machine = meta["machine"]
    hashing = settings["password_hashing"]
    lines = [
        "# authgate load test: latest figures",
        "",
        f"Written by `python -m bench` run `{meta['run_id']}` "
        f"({meta['elapsed_s']:.0f} s; load average at start "
        f"{' / '.join(f'{v:.2f}' for v in meta['loadavg_start'])}). Each row is the newest "
        "measurement of its configuration from today's runs; the `run` column says which run "
        "(ratios are always against baselines measured in that same run).",
        "",
        f"Machine: {machine['cpu_model']}, {machine['cores']} cores, {machine['memory_mib']} MiB, "
        f"Python {machine['python']}, {machine['wrk'].split(' Copyright')[0]}.",
        f"Code: commit `{machine['git_commit'][:12]}`"
        + (
            f" plus {len(machine['git_changed_files'])} uncommitted file(s) in src/"
            if machine.get("git_changed_files")
            else ""
        )
        + f"; served from a {settings.get('source', 'working tree')}"
        + (f" (digest {', '.join(settings['src_digests'])})" if settings.get("src_digests") else "")
        + ".",
        f"Server: `authgate serve`, {settings['workers']} workers, ACCESS_LOG=false, argon2id "
        f"m={hashing['memory_kib']} KiB t={hashing['time_cost']} p={hashing['parallelism']} "
        "(production defaults), "
        + {
            "raised": "per-IP rate limits raised out of reach (counted as in production, "
            "never refusing: all load comes from one address)",
            "off": "rate limits off (RATE_LIMIT_ENABLED=false)",
            "default": "rate limits as shipped (they will refuse most of the load)",
        }.get(settings.get("rate_limits", ""), "rate limits as configured")
        + ". Load: wrk over loopback on the same machine, "
        f"{settings['wrk_threads']} threads, {settings['duration_s']:g} s per run, "
        f"socket timeout {settings['wrk_timeout_s']:g} s.",
        "",
        "CPU columns are % of one core over the run (200 % = both cores): `server` is authgate "
        "(all its processes, from /proc), `wrk` is the load generator, `other` is everything "
        "else on the machine (e.g. other engineers' test suites): a high `other` or load "
        "average means the figures are depressed by noise.",
        "",
        "## Baselines",
        "",
        "Each is measured right before the first scenario that is compared with it, in the "
        "same database block (same background load as far as possible).",
        "",
        "| baseline | before | measured | other CPU % | load avg | run |",
        "|---|---|---|---|---|---|",
    ]
    for record in latest:
        if record.get("kind") != "baseline":
            continue
        load = f"{record['loadavg_start'][0]:.2f}"
        if record["scenario"] == "hello":
            latency = record["latency_ms"]
            text = (
                f"{_n(record['ok_rps'])} req/s, p50 {_n(latency['p50'], 2)} ms, "
                f"p99 {_n(latency['p99'], 2)} ms, errors {record['errors']['total']}, "
                f"server CPU {record['cpu']['server_cpu_pct']:.0f} %"
            )
            name = (
                f"hello: bare FastAPI, uvicorn uvloop+httptools, {record['workers']} workers, "
                f"c{record['connections']}"
            )
            other = f"{record['cpu']['other_cpu_pct']:.0f}"
        elif record["scenario"] == "argon2":
            text = (
                f"verify {_n(record['verify_per_s'])}/s ({record['verify_ms_each']} ms each), "
                f"hash {_n(record['hash_per_s'])}/s ({record['hash_ms_each']} ms each)"
            )
            name = f"argon2: argon2-cffi in-process, {record['threads']} threads"
            other = (
                f"{record['verify_machine']['other_cpu_pct']:.0f} / "
                f"{record['hash_machine']['other_cpu_pct']:.0f}"
            )
        else:
            text = (
                f"{_n(record['one_process_per_s'])}/s in 1 process, "
                f"{_n(record['all_processes_per_s'])}/s in {record['processes']}"
            )
            name = f"sign: PyJWT {record['algorithm']}, key object loaded once"
            other = f"{record['all_processes_machine']['other_cpu_pct']:.0f}"
        block = f"{record.get('db') or '-'} {record.get('algorithm') or ''}".strip()
        lines.append(f"| {name} | {block} | {text} | {other} | {load} | {record['run_id']} |")
    lines += [
        "",
        "## Scenarios",
        "",
        "`CPU ms/2xx`: server CPU per successful response, as event loops + other threads "
        "(argon2 pool, aiosqlite).",
        "",
        "| scenario | db | alg | conns | 2xx/s | p50 ms | p99 ms | errors | server CPU % "
        "| CPU ms/2xx | wrk CPU % | other CPU % | load avg | conns per worker | baseline | ratio "
        "| targets | run |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    failures = []
    for record in latest:
        if record.get("kind") == "failed":
            failures.append(record)
            continue
        if record.get("kind") != "http":
            continue
        latency = record["latency_ms"]
        cpu = record["cpu"]
        errors = record["errors"]
        error_text = str(errors["total"])
        if errors["total"]:
            codes = {k: v for k, v in record["status_counts"].items() if not k.startswith("2")}
            parts = [f"{k}x{v}" for k, v in codes.items()]
            parts += [
                f"{k} {errors[k]}" for k in ("connect", "read", "write", "timeout") if errors[k]
            ]
            error_text = f"**{errors['total']}** ({', '.join(parts)})"
        base = record.get("baseline")
        held = record.get("connections_per_worker_midrun", {})
        spread = "/".join(str(n) for n in held.values())
        lines.append(
            "| "
            + " | ".join(
                [
                    *_identity_cells(record),
                    _n(record["ok_rps"])
                    + (
                        f" (all {_n(record['throughput_rps'])})"
                        if record["ok_rps"] != record["throughput_rps"]
                        else ""
                    ),
                    _n(latency["p50"], 2),
                    _n(latency["p99"], 2),
                    error_text,
                    f"{cpu['server_cpu_pct']:.0f}",
                    _cpu_per_ok(record.get("server_cpu_ms_per_ok") or {}),
                    f"{cpu['loadgen_cpu_pct']:.0f}",
                    f"{cpu['other_cpu_pct']:.0f}",
                    f"{record['loadavg_start'][0]:.2f}",
                    spread or "-",
                    f"{base['name']}: {_n(base['per_s'])}/s" if base else "-",
                    f"{record['ratio']:.2f}" if record.get("ratio") is not None else "-",
                    _verdict(record.get("targets", [])),
                    record["run_id"],
                ]
            )
            + " |"
        )
    if failures:
        lines += ["", "## Failed", ""]
        for record in failures:
            lines.append(
                f"- {record['scenario']} {record.get('db')} {record.get('algorithm')} "
                f"c{record.get('connections', '-')} (run {record['run_id']}): {record['error']}"
            )
    summary = [
        (record, t)
        for record in latest
        if record.get("kind") == "http"
        for t in record.get("targets", [])
    ]
    passed = sum(1 for _, t in summary if t["pass"] is True)
    failed = sum(1 for _, t in summary if t["pass"] is False)
    lines += [
        "",
        f"Targets: {passed} passed, {failed} failed, {len(summary) - passed - failed} not "
        "evaluated.",
        "",
    ]
    used = {record["run_id"] for record in latest}
    lines += _runs_table({k: v for k, v in runs.items() if k in used})
    lines.append("")
    return "\n".join(lines)
