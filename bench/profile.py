"""Optional sampling profiles of the server workers with py-spy (``--profile``).

py-spy is not a project dependency: install it anywhere (``pip install py-spy``)
and put it on PATH or pass ``--py-spy PATH``. Each worker is sampled for the whole
measured run; the collapsed stacks are kept and summarized into the record.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.servers import BenchError

RATE_HZ = 200
_FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def find_py_spy(explicit: str | None) -> str:
    path = explicit or shutil.which("py-spy")
    if path is None:
        raise BenchError("--profile needs py-spy: `pip install py-spy`, then --py-spy PATH")
    return path


@dataclass
class Sampler:
    processes: list[tuple[int, Path, subprocess.Popen[bytes]]]

    @classmethod
    def start(cls, py_spy: str, pids: list[int], duration_s: float, out: Path) -> Sampler:
        out.parent.mkdir(parents=True, exist_ok=True)
        started = []
        for pid in pids:
            path = out.with_name(f"{out.name}-pid{pid}.txt")
            command = [
                py_spy, "record", "--pid", str(pid), "--rate", str(RATE_HZ),
                "--duration", str(max(1, round(duration_s))), "--format", "raw",
                "--threads", "--nonblocking", "--output", str(path),
            ]  # fmt: skip
            process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            started.append((pid, path, process))
        return cls(started)

    def finish(self, repo: Path) -> list[dict[str, Any]]:
        summaries = []
        for pid, path, process in self.processes:
            try:
                _, err = process.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                _, err = process.communicate()
            if not path.exists():
                summaries.append({"pid": pid, "error": err.decode(errors="replace")[-500:]})
                continue
            summary = summarize(path)
            summary["pid"] = pid
            summary["file"] = (
                str(path.relative_to(repo)) if path.is_relative_to(repo) else str(path)
            )
            summaries.append(summary)
        return summaries


def _short(frame: str) -> str:
    match = _FRAME.match(frame)
    if match is None:
        return frame
    file = match["file"]
    for marker in ("site-packages/", "src/"):
        if marker in file:
            file = file.split(marker, 1)[1]
    return f"{match['function']} ({file})"


def summarize(path: Path, top: int = 25) -> dict[str, Any]:
    """Busy seconds per kind of thread, then for the event loop (each worker's main
    thread, where all Python request handling runs) and for the other threads
    (argon2 pool, aiosqlite), the hottest frames anywhere on the stack (inclusive)
    and at its top (self), as % of that kind's samples.

    py-spy counts a thread that is runnable but waiting for a core as busy, so on
    an oversubscribed machine the seconds overstate CPU; the shares stay usable."""
    samples: dict[str, Counter[str]] = {"event_loop": Counter(), "other_threads": Counter()}
    leaf: dict[str, Counter[str]] = {"event_loop": Counter(), "other_threads": Counter()}
    inclusive: dict[str, Counter[str]] = {"event_loop": Counter(), "other_threads": Counter()}
    categories: Counter[str] = Counter()
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        thread = frames[0] if frames[0].startswith(("thread", "process")) else "?"
        frames = [f for f in frames if not f.startswith(("thread ", "process "))]
        if not frames:
            continue
        kind = "event_loop" if thread.endswith("MainThread") else "other_threads"
        samples[kind][_thread_kind(thread, frames)] += count
        if kind == "event_loop":
            categories[category([_short(f) for f in frames])] += count
        leaf[kind][_short(frames[-1])] += count
        for name in {_short(f) for f in frames}:
            inclusive[kind][name] += count
    loop_total = sum(categories.values())
    summary: dict[str, Any] = {
        "rate_hz": RATE_HZ,
        # Each event-loop sample in exactly one bucket (see ``category``).
        "event_loop_categories_pct": [
            [name, round(100 * n / loop_total, 1)] for name, n in categories.most_common()
        ]
        if loop_total
        else [],
    }
    for kind in ("event_loop", "other_threads"):
        total = sum(samples[kind].values())
        summary[kind] = {
            "busy_seconds": {k: round(n / RATE_HZ, 2) for k, n in samples[kind].items()},
            "inclusive_pct": [
                [name, round(100 * n / total, 1)] for name, n in inclusive[kind].most_common(top)
            ]
            if total
            else [],
            "self_pct": [
                [name, round(100 * n / total, 1)] for name, n in leaf[kind].most_common(top)
            ]
            if total
            else [],
        }
    return summary


def _thread_kind(thread: str, frames: list[str]) -> str:
    if thread.endswith("MainThread"):
        return "event loop (main thread)"
    if any("argon2" in f for f in frames):
        return "argon2 pool"
    if any("aiosqlite" in f for f in frames):
        return "aiosqlite threads"
    return "other threads"


def _has(frames: list[str], *needles: str) -> bool:
    return any(needle in frame for frame in frames for needle in needles)


def category(frames: list[str]) -> str:
    """One bucket per event-loop sample: features first (anywhere on the stack), then
    whatever is left by the innermost frame we can place."""
    if _has(frames, "RequestResponseCycle.send") and _has(frames, "logging/__init__", "structlog"):
        return "uvicorn access log (formatted by structlog)"
    if _has(frames, "logging/__init__", "structlog"):
        return "other logging (audit lines, errors)"
    if _has(frames, "jwt/api_jws.py", "jwt/api_jwt.py", "jwt/algorithms.py"):
        if _has(frames, "encode (jwt", "sign (jwt"):
            return "JWT sign (PyJWT encode)"
        return "JWT verify (PyJWT decode)"
    if _has(frames, "TokenVerifier.verify", "TokenVerifier._recheck", "TokenVerifier._digest"):
        return "verified-token cache lookup"
    if _has(frames, "zxcvbn"):
        return "zxcvbn password strength"
    if _has(frames, "sqlalchemy/", "asyncmy", "aiosqlite", "unit_of_work", "repositories"):
        return "database layer (SQLAlchemy + driver)"
    if _has(frames, "refresh_secrets", "hkdf", "aead"):
        return "refresh-token crypto (sha256, HKDF, AES-GCM)"
    if _has(frames, "throttling/", "limits/"):
        return "throttling counters"
    if _has(frames, "email_validator", "emails.py"):
        return "email parsing"
    if _has(frames, "passwords.py", "run_in_executor", "futures.py"):
        return "argon2 hand-off (futures)"
    if _has(frames, "pydantic", "request_body_to_args", "Request.json", "Request.body", "json/"):
        return "body parsing + pydantic"
    for frame in reversed(frames):
        if "httptools_impl" in frame:
            return "uvicorn HTTP (parse, socket write)"
        if "authgate/web/middleware" in frame:
            return "authgate middlewares (own code)"
        if "fastapi/" in frame or "starlette/" in frame:
            return "FastAPI/Starlette (routing, dependencies, their middlewares)"
        if "authgate/" in frame:
            return "authgate handlers (other)"
    # Runner.run itself: uvloop's C code, or waiting for a core (counted as busy).
    return "event loop itself (uvloop; includes waiting for a core)"
