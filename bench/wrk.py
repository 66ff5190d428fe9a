"""Run wrk with one of our Lua scripts and read back the figures it prints."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.servers import BenchError

LUA = Path(__file__).resolve().parent / "lua"
_MARKER = "BENCH_RESULT "


def require_wrk() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise BenchError(
            "wrk is not installed: run `apt-get install -y wrk` (as root; `apt-get update` "
            "first on a fresh machine), or put wrk on PATH"
        )
    return path


@dataclass
class WrkRun:
    figures: dict[str, Any]
    cpu_seconds: float  # wrk's own user + system time
    command: list[str]


def script(workdir: Path, name: str) -> Path:
    """common.lua followed by the scenario's script, as one file wrk can load."""
    path = workdir / f"{name}.lua"
    if not path.exists():
        common = (LUA / "common.lua").read_text()
        path.write_text(common + "\n" + (LUA / f"{name}.lua").read_text())
    return path


def run(
    *,
    url: str,
    lua: Path,
    connections: int,
    threads: int,
    duration_s: float,
    timeout_s: float,
    headers: dict[str, str] | None = None,
    args: list[str] | None = None,
) -> WrkRun:
    command = [
        require_wrk(),
        "--threads", str(min(threads, connections)),
        "--connections", str(connections),
        "--duration", f"{max(1, round(duration_s))}s",
        "--timeout", f"{max(1, round(timeout_s))}s",
        "--script", str(lua),
    ]  # fmt: skip
    for name, value in (headers or {}).items():
        command += ["--header", f"{name}: {value}"]
    command.append(url)
    if args:
        command += ["--", *args]
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen(command, stdout=out, stderr=err, text=True)
        code, cpu = _wait_with_rusage(process, deadline=duration_s + timeout_s + 60)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if code is None:
        raise BenchError(f"wrk did not finish and was killed: {' '.join(command)}")
    if code != 0:
        raise BenchError(f"wrk failed ({code}): {stderr.strip() or stdout[-2000:]}")
    for line in stdout.splitlines():
        if line.startswith(_MARKER):
            return WrkRun(json.loads(line[len(_MARKER) :]), cpu, command)
    raise BenchError(f"wrk printed no result:\n{stdout[-2000:]}\n{stderr[-2000:]}")


def _wait_with_rusage(
    process: subprocess.Popen[str], *, deadline: float
) -> tuple[int | None, float]:
    """Reap wrk with wait4 to get its own CPU time (RUSAGE_CHILDREN would mix in
    every other child). Kills it after ``deadline`` seconds; code None then."""
    started = time.monotonic()
    while True:
        pid, status, rusage = os.wait4(process.pid, os.WNOHANG)
        if pid == process.pid:
            code = os.waitstatus_to_exitcode(status)
            process.returncode = code  # reaped here; Popen must not wait again
            return code, rusage.ru_utime + rusage.ru_stime
        if time.monotonic() - started > deadline:
            process.kill()
            _, _, rusage = os.wait4(process.pid, 0)
            process.returncode = -9
            return None, rusage.ru_utime + rusage.ru_stime
        time.sleep(0.01)
