"""CPU accounting from /proc, load average and machine facts (Linux only)."""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
CORES = os.cpu_count() or 1


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (index 0 is the state)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()


def descendants(root: int) -> list[int]:
    """``root`` and every process below it (uvicorn's workers, their helpers)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat_fields(int(entry))
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry))
    found, queue = [], [root]
    while queue:
        pid = queue.pop()
        found.append(pid)
        queue.extend(children.get(pid, ()))
    return found


def cpu_seconds_by_pid(root: int) -> dict[int, float]:
    """utime + stime of ``root`` and each live descendant, in CPU seconds."""
    found = {}
    for pid in descendants(root):
        fields = _stat_fields(pid)
        if fields is not None:
            # utime and stime are fields 14 and 15 of stat(5); index 0 here is field 3.
            found[pid] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return found


def main_thread_cpu_seconds(pids: list[int]) -> dict[int, float]:
    """CPU seconds of each process's main thread (uvicorn's event loop); the rest
    of a process's time is its other threads (argon2 pool, aiosqlite...)."""
    found = {}
    for pid in pids:
        try:
            raw = Path(f"/proc/{pid}/task/{pid}/stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2 :].split()
        found[pid] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return found


def tree_cpu_seconds(root: int) -> float:
    """utime + stime of ``root`` and its live descendants, in CPU seconds."""
    return sum(cpu_seconds_by_pid(root).values())


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (all cores), from /proc/stat."""
    first = Path("/proc/stat").read_text().splitlines()[0].split()
    values = [int(v) for v in first[1:9]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values) - idle) / CLOCK_TICKS


def rss_mib(pids: list[int], field: str = "VmRSS") -> float:
    """Resident memory of ``pids`` in MiB, summed (``VmHWM``: each one's peak so far)."""
    total_kib = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith(f"{field}:"):
                    total_kib += int(line.split()[1])
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
    return round(total_kib / 1024, 1)


def loadavg() -> list[float]:
    return [float(v) for v in Path("/proc/loadavg").read_text().split()[:3]]


@dataclass
class CpuWindow:
    """Snapshot at the start of a measured interval; ``finish`` gives the percentages."""

    root: int | None
    wall: float
    server: dict[int, float]
    main_threads: dict[int, float]
    machine: float
    rss_mib: float = 0.0

    @classmethod
    def start(cls, root: int | None) -> CpuWindow:
        server = cpu_seconds_by_pid(root) if root is not None else {}
        return cls(
            root=root,
            wall=time.monotonic(),
            server=server,
            main_threads=main_thread_cpu_seconds(list(server)),
            machine=machine_busy_seconds(),
            rss_mib=rss_mib(list(server)),
        )

    def finish(self, loadgen_cpu_seconds: float = 0.0) -> dict[str, Any]:
        wall = time.monotonic() - self.wall
        now = cpu_seconds_by_pid(self.root) if self.root is not None else {}
        by_pid = {pid: now[pid] - self.server.get(pid, 0.0) for pid in now}
        server = sum(by_pid.values())
        mains = main_thread_cpu_seconds(list(now))
        main = sum(mains[pid] - self.main_threads.get(pid, 0.0) for pid in mains)
        machine = machine_busy_seconds() - self.machine
        other = max(0.0, machine - server - loadgen_cpu_seconds)
        return {
            "wall_s": round(wall, 3),
            "server_cpu_pct": round(100 * server / wall, 1),
            # Event loops (main threads) vs every other thread (argon2, aiosqlite).
            "server_main_threads_cpu_pct": round(100 * main / wall, 1),
            "server_other_threads_cpu_pct": round(100 * (server - main) / wall, 1),
            "server_cpu_pct_by_pid": {
                str(pid): round(100 * used / wall, 1) for pid, used in by_pid.items()
            },
            "loadgen_cpu_pct": round(100 * loadgen_cpu_seconds / wall, 1),
            "machine_busy_pct": round(100 * machine / wall, 1),
            "other_cpu_pct": round(100 * other / wall, 1),
            # Does a flood grow the server? Resident memory of all its processes
            # before and after the run, and the sum of their peaks so far.
            "server_rss_mib": {
                "start": self.rss_mib,
                "end": rss_mib(list(now)),
                "peak_so_far": rss_mib(list(now), "VmHWM"),
            },
        }


def wait_idle(root: int, *, threshold_pct: float = 10.0, timeout: float = 60.0) -> float:
    """Wait until the server tree uses under ``threshold_pct`` of a core (queued
    work from the previous scenario drained). Returns the seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        before = tree_cpu_seconds(root)
        time.sleep(0.5)
        if 100 * (tree_cpu_seconds(root) - before) / 0.5 < threshold_pct:
            break
    return round(time.monotonic() - started, 1)


def _established_inodes(port: int) -> set[str]:
    """Socket inodes of ESTABLISHED TCP connections whose local port is ``port``."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == "01":
                inodes.add(fields[9])
    return inodes


def connections_per_process(pids: list[int], port: int) -> dict[str, int]:
    """How many client connections each server process holds right now: shows
    whether the kernel spread wrk's connections evenly over the workers."""
    inodes = _established_inodes(port)
    counts = {}
    for pid in pids:
        held = 0
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    link = os.readlink(f"/proc/{pid}/fd/{fd}")
                except OSError:
                    continue
                if link.startswith("socket:[") and link[8:-1] in inodes:
                    held += 1
        except OSError:
            continue
        counts[str(pid)] = held
    return counts


def source_digest(src: Path) -> str:
    """A fingerprint of the code under test: other people edit src/ while we run."""
    digest = hashlib.sha256()
    for path in sorted(src.rglob("*.py")):
        digest.update(str(path.relative_to(src)).encode())
        try:
            digest.update(path.read_bytes())
        except OSError:
            continue
    return digest.hexdigest()[:16]


def _first(command: list[str]) -> str:
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unavailable"
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0] if text else "unavailable"


def _lines(command: list[str]) -> list[str]:
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ["unavailable"]
    return [line.strip() for line in out.stdout.splitlines() if line.strip()]


def machine_info(repo: Path) -> dict[str, Any]:
    cpu_model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu_model = line.split(":", 1)[1].strip()
            break
    memory_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            memory_kib = int(line.split()[1])
    packages = {}
    for name in (
        "authgate", "fastapi", "starlette", "uvicorn", "uvloop", "httptools", "pyjwt",
        "cryptography", "argon2-cffi", "sqlalchemy", "aiosqlite", "asyncmy", "pydantic",
    ):  # fmt: skip
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = "missing"
    # --no-optional-locks: read only, never refresh the index another engineer uses.
    status = ["git", "--no-optional-locks", "-C", str(repo), "status", "--porcelain"]
    changes = _lines([*status, "--untracked-files=all", "--", "src", "pyproject.toml", "uv.lock"])
    return {
        "hostname": platform.node(),
        "cpu_model": cpu_model,
        "cores": CORES,
        "memory_mib": memory_kib // 1024,
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "packages": packages,
        "wrk": _first(["wrk", "--version"]),
        "git_commit": _first(["git", "-C", str(repo), "rev-parse", "HEAD"]),
        "git_changed_files": changes,
    }
