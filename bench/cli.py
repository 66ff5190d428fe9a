"""``python -m bench``: run the scenarios and baselines, write bench/results/."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench import baselines, procs, report, seed, servers, wrk
from bench.profile import Sampler, find_py_spy
from bench.servers import REPO, BenchError, Server

SCENARIOS = ("verify", "refresh", "login", "signup", "jwks")
ALGORITHMS = ("RS256", "ES256", "EdDSA")
DATABASES = ("sqlite", "mariadb")
RESULTS = Path(__file__).resolve().parent / "results"


def _csv(choices: Sequence[str]) -> Any:
    def parse(value: str) -> list[str]:
        items = [v.strip() for v in value.split(",") if v.strip()]
        wrong = [v for v in items if v not in choices]
        if wrong or not items:
            raise argparse.ArgumentTypeError(f"choose from {', '.join(choices)}")
        return items

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Load-test the real `authgate serve` with wrk over loopback, next to "
        "baselines measured in the same run. Writes bench/results/.",
    )
    parser.add_argument("--workers", type=int, choices=(1, 2), default=2)
    parser.add_argument(
        "--db", choices=(*DATABASES, "both"), default="both", help="database(s) (default both)"
    )
    parser.add_argument(
        "--algorithm",
        type=_csv(ALGORITHMS),
        default=["RS256"],
        help="JWT algorithm(s), comma-separated (default RS256)",
    )
    parser.add_argument(
        "--scenarios",
        type=_csv(SCENARIOS),
        default=list(SCENARIOS),
        help=f"comma-separated subset of {','.join(SCENARIOS)} (default all)",
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per run (10)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections (64)")
    parser.add_argument(
        "--stress-connections",
        type=int,
        default=256,
        help="also run every scenario at this many connections; 0 to skip (256)",
    )
    parser.add_argument(
        "--stress-duration", type=float, help="seconds per stress run (default --duration)"
    )
    parser.add_argument("--wrk-threads", type=int, default=2, help="wrk threads (2)")
    parser.add_argument("--timeout", type=float, default=5.0, help="wrk socket timeout, s (5)")
    parser.add_argument(
        "--warmup", type=float, default=2.0, help="unrecorded warm-up for GET scenarios, s (2)"
    )
    parser.add_argument(
        "--rate-limits",
        choices=("raised", "off", "default"),
        default="raised",
        help="per-IP throttles: all load comes from 127.0.0.1, so the defaults (100 sign-ins "
        "a minute...) would measure the limit, not the server. raised (default): counted "
        "as in production but never reached; off: RATE_LIMIT_ENABLED=false; default: as shipped",
    )
    parser.add_argument("--users", type=int, default=64, help="users seeded for login (64)")
    parser.add_argument(
        "--no-baselines", action="store_true", help="skip hello/argon2/sign (no ratios)"
    )
    parser.add_argument("--profile", action="store_true", help="sample workers with py-spy")
    parser.add_argument("--py-spy", help="path to py-spy (default: on PATH)")
    parser.add_argument(
        "--live-src",
        action="store_true",
        help="serve the working tree's src/ as it is at each start, instead of a copy "
        "taken when the run begins",
    )
    parser.add_argument(
        "--keep-db", action="store_true", help="keep the authgate_bench_<pid> database"
    )
    parser.add_argument("--keep-workdir", action="store_true", help="keep logs, keys, SQLite")
    parser.add_argument(
        "--results",
        type=Path,
        help="output directory (default bench/results, or bench/results/profiled with "
        "--profile: sampled runs are slower and must not replace the latest figures)",
    )
    return parser


@dataclass
class Run:
    args: argparse.Namespace
    run_id: str
    workdir: Path
    hashing: dict[str, int]
    py_spy: str | None
    hello: Server | None = None
    src: Path | None = None  # the frozen copy of src/ the server imports
    source_digests: list[str] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def say(self, message: str) -> None:
        print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _ms(us: float) -> float:
    return round(us / 1000, 2)


def _measure(
    run: Run,
    *,
    scenario: str,
    server: Server,
    path: str,
    lua: str,
    connections: int,
    db: str | None,
    algorithm: str | None,
    headers: dict[str, str] | None = None,
    lua_args: list[str] | None = None,
    warmup: bool = False,
) -> dict[str, Any]:
    args = run.args
    stress = connections == args.stress_connections and connections != args.connections
    duration = (args.stress_duration or args.duration) if stress else args.duration
    script = wrk.script(run.workdir, lua)
    common = {
        "url": server.base_url + path,
        "lua": script,
        "connections": connections,
        "threads": args.wrk_threads,
        "timeout_s": args.timeout,
        "headers": headers,
        "args": lua_args,
    }
    waited = procs.wait_idle(server.pid)
    if warmup and args.warmup > 0:
        wrk.run(duration_s=args.warmup, **common)
        procs.wait_idle(server.pid)
    load = procs.loadavg()
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    sampler = None
    if run.py_spy is not None:
        name = f"{run.run_id}-{scenario}-{db or 'none'}-{algorithm or 'none'}-c{connections}"
        out = args.results / "profiles" / name
        sampler = Sampler.start(run.py_spy, server.worker_pids(), duration, out)
    spread: dict[str, int] = {}
    port = int(server.base_url.rsplit(":", 1)[1])
    snapshot = threading.Timer(
        duration / 2,
        lambda: spread.update(procs.connections_per_process(server.worker_pids(), port)),
    )
    window = procs.CpuWindow.start(server.pid)
    snapshot.start()
    result = wrk.run(duration_s=duration, **common)
    snapshot.join()
    cpu = window.finish(result.cpu_seconds)
    figures = result.figures
    seconds = figures["duration_us"] / 1e6
    errors = figures["errors"]
    socket_errors = errors["connect"] + errors["read"] + errors["write"] + errors["timeout"]
    latency = figures["latency_us"]
    record: dict[str, Any] = {
        "kind": "http",
        "scenario": scenario,
        "db": db,
        "algorithm": algorithm,
        "workers": server.workers,
        "connections": connections,
        "stress": stress,
        "wrk_threads": min(args.wrk_threads, connections),
        "duration_s": round(seconds, 2),
        "started_at": started_at,
        "loadavg_start": load,
        "idle_wait_s": waited,
        "requests": figures["requests"],
        "throughput_rps": round(figures["requests"] / seconds, 1),
        # Only 2xx count as work done: a fast 503 is not a login.
        "ok_rps": round((figures["requests"] - figures["non_2xx"]) / seconds, 1),
        "latency_ms": {k: _ms(v) for k, v in latency.items()},
        "errors": {
            "total": figures["non_2xx"] + socket_errors,
            "non_2xx": figures["non_2xx"],
            **{k: errors[k] for k in ("connect", "read", "write", "timeout")},
            "refresh_tokens_starved": figures["starved"],
        },
        "status_counts": figures["status_counts"],
        "cpu": cpu,
        # Server CPU per 2xx response, split into event loops and other threads.
        "server_cpu_ms_per_ok": _per_ok(cpu, figures, seconds),
        "connections_per_worker_midrun": spread,
        "wrk_command": [Path(c).name if c.startswith("/") else c for c in result.command],
    }
    if sampler is not None:
        record["profile"] = sampler.finish(REPO)
    run.say(
        f"{scenario:7} {db or '-':7} {algorithm or '-':5} c{connections:<4} "
        f"{record['ok_rps']:>9.1f} 2xx/s  p50 {record['latency_ms']['p50']:.1f} ms  "
        f"p99 {record['latency_ms']['p99']:.1f} ms  errors {record['errors']['total']}  "
        f"server CPU {cpu['server_cpu_pct']:.0f}%  wrk CPU {cpu['loadgen_cpu_pct']:.0f}%  "
        f"other {cpu['other_cpu_pct']:.0f}%  load {load[0]:.2f}  "
        f"conns/worker {'/'.join(str(n) for n in spread.values()) or '?'}"
    )
    return record


def _per_ok(cpu: dict[str, Any], figures: dict[str, Any], seconds: float) -> dict[str, Any]:
    ok = figures["requests"] - figures["non_2xx"]
    if ok <= 0:
        return {}
    # CPU % is over the window's wall time (a few ms longer than wrk's own duration).
    scale = 10 * cpu["wall_s"] / ok  # percent of a core * wall seconds -> ms per response
    return {
        "total": round(cpu["server_cpu_pct"] * scale, 3),
        "event_loops": round(cpu["server_main_threads_cpu_pct"] * scale, 3),
        # Clamped: the two snapshots are read a few microseconds apart.
        "other_threads": round(max(0.0, cpu["server_other_threads_cpu_pct"] * scale), 3),
    }


def _probe(server: Server, method: str, path: str, **kwargs: Any) -> None:
    """One request before loading: the scenario must succeed when unloaded."""
    response = httpx.request(method, server.base_url + path, timeout=30.0, **kwargs)
    if response.status_code != 200:
        raise BenchError(f"{method} {path} returned {response.status_code}: {response.text[:300]}")


def _scenario(
    run: Run,
    scenario: str,
    server: Server,
    *,
    db: str,
    algorithm: str,
    users: list[seed.SeedUser],
    connections: int,
) -> dict[str, Any]:
    concurrency = 4 * server.workers
    common: dict[str, Any] = {
        "server": server,
        "connections": connections,
        "db": db,
        "algorithm": algorithm,
        "scenario": scenario,
    }
    if scenario == "verify":
        # A fresh token for each run: access tokens live 15 minutes.
        token = seed.sign_in(server.base_url, users, 1, concurrency=1)[0]["accessToken"]
        headers = {"Authorization": f"Bearer {token}"}
        _probe(server, "GET", "/secure", headers=headers)
        return _measure(run, path="/secure", lua="static", headers=headers, warmup=True, **common)
    if scenario == "jwks":
        _probe(server, "GET", "/.well-known/jwks.json")
        return _measure(run, path="/.well-known/jwks.json", lua="static", warmup=True, **common)
    if scenario == "login":
        users_file = run.workdir / "users.tsv"
        users_file.write_text("".join(f"{u.email}\t{u.password}\n" for u in users))
        return _measure(
            run, path="/api/v1/auth/credentials", lua="login", lua_args=[str(users_file)], **common
        )
    if scenario == "signup":
        tag = f"{run.run_id.replace('-', '')}{algorithm}{connections}"
        return _measure(
            run,
            path="/api/v1/signup/credentials",
            lua="signup",
            lua_args=[tag, seed.PASSWORD],
            **common,
        )
    if scenario == "refresh":
        # One token per connection, plus a reserve for failed responses; every
        # 200 hands the connection's thread its successor (see lua/refresh.lua).
        threads = min(run.args.wrk_threads, connections)
        count = connections + max(16, connections // 4)
        run.say(f"minting {count} refresh tokens (sign-ins) for refresh c{connections}")
        pairs = seed.sign_in(server.base_url, users, count, concurrency=concurrency)
        prefix = run.workdir / f"refresh-{db}-{algorithm}-c{connections}-"
        for thread in range(threads):
            tokens = [p["refreshToken"] for p in pairs[thread::threads]]
            Path(f"{prefix}{thread}.txt").write_text("\n".join(tokens) + "\n")
        return _measure(
            run, path="/api/v1/refresh", lua="refresh", lua_args=[str(prefix)], **common
        )
    raise AssertionError(scenario)


def _failed(scenario: str, db: str | None, algorithm: str | None, **extra: Any) -> dict[str, Any]:
    return {"kind": "failed", "scenario": scenario, "db": db, "algorithm": algorithm, **extra}


def _connection_levels(args: argparse.Namespace) -> list[int]:
    levels = [args.connections]
    if args.stress_connections and args.stress_connections != args.connections:
        levels.append(args.stress_connections)
    return levels


_NEVER = "1000000000/minute"  # counted like any limit, never reached
RATE_LIMIT_ENV = {
    "raised": {
        "RATE_LIMIT_ENABLED": "true",
        "RATE_LIMIT_AUTH_PER_IP": _NEVER,
        "RATE_LIMIT_SIGNUP_PER_IP": _NEVER,
        "RATE_LIMIT_REFRESH_PER_IP": _NEVER,
        "RATE_LIMIT_FAILED_SIGNINS_PER_ACCOUNT": _NEVER,
    },
    "off": {"RATE_LIMIT_ENABLED": "false"},
    "default": {},
}
BASELINE_OF = {"verify": "hello", "jwks": "hello", "login": "argon2", "signup": "argon2"}


def _baseline(run: Run, name: str, *, db: str, algorithm: str, keys: tuple[Path, Path]) -> None:
    """Measure a baseline right before the first scenario that needs it in this
    database's block, so both see the same background load."""
    args = run.args
    seconds = max(3.0, min(args.duration, 6.0))
    load = procs.loadavg()
    tags = {"kind": "baseline", "db": db, "algorithm": algorithm, "workers": args.workers}
    if name == "hello":
        assert run.hello is not None
        run.say(f"baseline hello: bare FastAPI, uvicorn uvloop/httptools, {args.workers} workers")
        # Sent with a Bearer token shaped like verify's, parsed and ignored.
        token = baselines.sample_token(keys[0], algorithm)
        # Also at the stress level: shows which part of a tail is uvicorn's own.
        for connections in _connection_levels(args):
            record = _measure(
                run,
                scenario="hello",
                server=run.hello,
                path="/",
                lua="static",
                connections=connections,
                db=db,
                algorithm=algorithm,
                headers={"Authorization": f"Bearer {token}"},
                warmup=True,
            )
            record.update(tags)
            run.records.append(record)
        return
    elif name == "argon2":
        threads = procs.CORES
        run.say(f"baseline argon2: {threads} threads, {run.hashing}, {seconds:.0f} s each")
        figures = baselines.argon2(run.hashing, threads=threads, duration_s=seconds)
        run.say(
            f"argon2 verify {figures['verify_per_s']}/s, hash {figures['hash_per_s']}/s "
            f"(load {load[0]:.2f}, other CPU {figures['verify_machine']['other_cpu_pct']:.0f}%"
            f"/{figures['hash_machine']['other_cpu_pct']:.0f}%)"
        )
        record = {**tags, "scenario": "argon2", "loadavg_start": load, **figures}
    else:
        run.say(f"baseline sign: PyJWT {algorithm}, 1 and {args.workers} processes")
        figures = baselines.sign(keys[0], algorithm, processes=args.workers, duration_s=seconds)
        run.say(
            f"sign {algorithm}: {figures['one_process_per_s']}/s in one process, "
            f"{figures['all_processes_per_s']}/s in {args.workers}"
        )
        record = {**tags, "scenario": "sign", "loadavg_start": load, **figures}
    run.records.append(record)


def _run_database(run: Run, db: str, algorithm: str, keys: tuple[Path, Path]) -> None:
    args = run.args
    if db == "mariadb":
        url, version, name = servers.recreate_mariadb_database()
        note = f"MariaDB {version}, database {name} (dropped afterwards unless --keep-db)"
        if note not in run.notes:
            run.notes.append(note)
    else:
        sqlite_path = run.workdir / f"authgate-{algorithm}.db"
        url = f"sqlite+aiosqlite:///{sqlite_path}"
    run.say(f"starting authgate serve ({db}, {algorithm}, {args.workers} workers)")
    server = servers.start_authgate(
        run.workdir / f"server-{db}-{algorithm}",
        database_url=url,
        workers=args.workers,
        algorithm=algorithm,
        keys=keys,
        hashing=run.hashing,
        extra_env=RATE_LIMIT_ENV[args.rate_limits],
        src=run.src,
    )
    digest = procs.source_digest(run.src or REPO / "src")
    if run.source_digests and digest not in run.source_digests:
        run.notes.append(f"src/ changed during the run (block {db} {algorithm})")
    run.source_digests.append(digest)
    measured: set[str] = set()
    try:
        run.say(f"seeding {args.users} users over HTTP")
        users = seed.sign_up_users(
            server.base_url, args.users, tag=algorithm.lower(), concurrency=4 * args.workers
        )
        for scenario in args.scenarios:
            baseline = BASELINE_OF.get(scenario, "sign")
            if not args.no_baselines and baseline not in measured:
                procs.wait_idle(server.pid)
                _baseline(run, baseline, db=db, algorithm=algorithm, keys=keys)
                measured.add(baseline)
            for connections in _connection_levels(args):
                try:
                    record = _scenario(
                        run,
                        scenario,
                        server,
                        db=db,
                        algorithm=algorithm,
                        users=users,
                        connections=connections,
                    )
                except BenchError as exc:
                    run.say(f"{scenario} {db} c{connections} FAILED: {exc}")
                    record = _failed(
                        scenario, db, algorithm, connections=connections, error=str(exc)
                    )
                    record["workers"] = args.workers
                record["src_digest"] = digest
                run.records.append(record)
    finally:
        server.stop()
        if db == "mariadb" and not args.keep_db:
            servers.drop_mariadb_database()


def _require_matplotlib() -> None:
    """Fail now rather than after the whole run, when the chart is drawn."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise BenchError(
            "matplotlib is missing: install the bench group "
            "(`UV_PYTHON_DOWNLOADS=never .tools/bin/uv sync --extra server --group bench`, "
            "or `make bench`)"
        ) from None


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.results is None:
        args.results = RESULTS / "profiled" if args.profile else RESULTS
    try:
        wrk.require_wrk()
        _require_matplotlib()
        py_spy = find_py_spy(args.py_spy) if args.profile else None
    except BenchError as exc:
        print(f"bench: error: {exc}", file=sys.stderr)
        return 2
    now = datetime.now(UTC).astimezone()
    run = Run(
        args=args,
        run_id=now.strftime("%Y-%m-%d-%H%M%S"),
        workdir=Path(tempfile.mkdtemp(prefix="authgate-bench-")),
        hashing=baselines.hashing_parameters(),
        py_spy=py_spy,
    )
    args.results.mkdir(parents=True, exist_ok=True)
    dbs = list(DATABASES) if args.db == "both" else [args.db]
    machine = procs.machine_info(REPO)
    load = procs.loadavg()
    run.say(f"run {run.run_id}: load average at start {load}, workdir {run.workdir}")
    started = time.monotonic()
    try:
        if not args.live_src:
            run.src = servers.snapshot_source(run.workdir / "src")
        keys = {}
        for algorithm in args.algorithm:
            directory = run.workdir / f"keys-{algorithm}"
            keys[algorithm] = servers.generate_keys(directory, algorithm, run.src)
        if not args.no_baselines and {"verify", "jwks"} & set(args.scenarios):
            # Started once and left idle between its runs, next to the server under test.
            run.hello = servers.start_hello(run.workdir / "hello", workers=args.workers)
        for algorithm in args.algorithm:
            for db in dbs:
                try:
                    _run_database(run, db, algorithm, keys[algorithm])
                except BenchError as exc:
                    run.say(f"{db} {algorithm} FAILED: {exc}")
                    run.records.append(_failed("server", db, algorithm, error=str(exc)))
    except KeyboardInterrupt:
        run.say("interrupted: writing what was measured")
        run.notes.append("interrupted before the end")
    finally:
        if run.hello is not None:
            run.hello.stop()
        if args.keep_workdir:
            run.say(f"kept {run.workdir}")
        else:
            shutil.rmtree(run.workdir, ignore_errors=True)
    meta = {
        "run_id": run.run_id,
        "started_at": now.isoformat(timespec="seconds"),
        "elapsed_s": round(time.monotonic() - started, 1),
        "loadavg_start": load,
        "loadavg_end": procs.loadavg(),
        "settings": {
            "workers": args.workers,
            "dbs": dbs,
            "algorithms": args.algorithm,
            "scenarios": args.scenarios,
            "duration_s": args.duration,
            "stress_duration_s": args.stress_duration or args.duration,
            "connections": args.connections,
            "stress_connections": args.stress_connections,
            "wrk_threads": args.wrk_threads,
            "wrk_timeout_s": args.timeout,
            "warmup_s": args.warmup,
            "users": args.users,
            "password_hashing": run.hashing,
            "rate_limits": args.rate_limits,
            "rate_limit_env": RATE_LIMIT_ENV[args.rate_limits],
            "access_log": False,
            "profiled": args.profile,
            "source": "working tree (live)" if args.live_src else "copy of src/ taken at start",
            "src_digests": sorted(set(run.source_digests)),
        },
        "machine": machine,
        "notes": run.notes,
    }
    written = report.write(args.results, meta, run.records)
    for path in written:
        run.say(f"wrote {path.relative_to(REPO) if path.is_relative_to(REPO) else path}")
    print((args.results / "latest.md").read_text())
    failed = [r for r in run.records if r["kind"] == "failed"]
    return 1 if failed else 0
