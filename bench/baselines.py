"""In-process ceilings: argon2 verifications/hashes per second and JWT signatures per second."""

from __future__ import annotations

import multiprocessing
import os
import time
import uuid
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench import procs


def hashing_parameters() -> dict[str, int]:
    """The production defaults of PASSWORD_HASH_* (what an unconfigured server uses)."""
    from authgate.config import Settings

    fields = Settings.model_fields
    return {
        "time_cost": int(fields["password_hash_time_cost"].default),
        "memory_kib": int(fields["password_hash_memory_kib"].default),
        "parallelism": int(fields["password_hash_parallelism"].default),
    }


def _count_until(deadline: float, work: Any, *args: Any) -> tuple[int, float]:
    done = 0
    while time.perf_counter() < deadline:
        work(*args)
        done += 1
    return done, time.perf_counter()


def argon2(params: dict[str, int], *, threads: int, duration_s: float) -> dict[str, Any]:
    """argon2id verifications/s and hashes/s on ``threads`` threads (argon2-cffi
    releases the GIL, as in the server's hashing pool)."""
    from argon2 import PasswordHasher, Type

    hasher = PasswordHasher(
        time_cost=params["time_cost"],
        memory_cost=params["memory_kib"],
        parallelism=params["parallelism"],
        hash_len=32,
        salt_len=16,
        type=Type.ID,
    )
    password = "correct horse battery staple"  # noqa: S105 - hashed, never stored
    encoded = hasher.hash(password)
    figures: dict[str, Any] = {"threads": threads, "parameters": params}
    for name, work, args in (
        ("verify", hasher.verify, (encoded, password)),
        ("hash", hasher.hash, (password,)),
    ):
        window = procs.CpuWindow.start(os.getpid())
        started = time.perf_counter()
        deadline = started + duration_s
        with ThreadPoolExecutor(max_workers=threads) as pool:
            futures = [pool.submit(_count_until, deadline, work, *args) for _ in range(threads)]
            results = [future.result() for future in futures]
        count = sum(n for n, _ in results)
        elapsed = max(end for _, end in results) - started
        figures[f"{name}_per_s"] = round(count / elapsed, 1)
        figures[f"{name}_ms_each"] = round(1000 * elapsed * threads / count, 2)
        figures[f"{name}_machine"] = window.finish()
    return figures


def _claims() -> dict[str, Any]:
    now = int(time.time())
    user_id = str(uuid.uuid4())
    # The shape of authgate's access tokens (kid + typ header, RFC 9068 claims).
    return {
        "iss": "http://127.0.0.1:3000",
        "aud": "authgate",
        "sub": user_id,
        "userId": user_id,
        "email": "someone@bench.example.com",
        "given_name": "Bench",
        "family_name": "User",
        "name": "Bench User",
        "iat": now,
        "exp": now + 900,
        "jti": uuid.uuid4().hex,
        "sid": str(uuid.uuid4()),
    }


def sample_token(private_key_path: Path, algorithm: str) -> str:
    """A token shaped like authgate's, to give the hello baseline a same-size header."""
    import jwt
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(private_key_path.read_bytes(), None)
    headers = {"kid": "x" * 43, "typ": "at+jwt"}  # a kid is a 43-character thumbprint
    return jwt.encode(_claims(), key, algorithm=algorithm, headers=headers)  # type: ignore[arg-type]


def _sign_worker(private_key_path: str, algorithm: str, duration_s: float) -> tuple[int, float]:
    import jwt
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(Path(private_key_path).read_bytes(), None)
    claims = _claims()
    headers = {"kid": "x" * 43, "typ": "at+jwt"}
    for _ in range(20):  # warm up
        jwt.encode(claims, key, algorithm=algorithm, headers=headers)  # type: ignore[arg-type]
    started = time.perf_counter()
    deadline = started + duration_s
    done = 0
    while time.perf_counter() < deadline:
        jwt.encode(claims, key, algorithm=algorithm, headers=headers)  # type: ignore[arg-type]
        done += 1
    return done, time.perf_counter() - started


def sign(
    private_key_path: Path, algorithm: str, *, processes: int, duration_s: float
) -> dict[str, Any]:
    """PyJWT signatures/s with the key object loaded once: in 1 process (one core)
    and in ``processes`` processes at once (the server's workers)."""
    context = multiprocessing.get_context("spawn")
    figures: dict[str, Any] = {"algorithm": algorithm, "processes": processes}
    for label, count in (("one_process", 1), ("all_processes", processes)):
        window = procs.CpuWindow.start(os.getpid())
        with ProcessPoolExecutor(max_workers=count, mp_context=context) as pool:
            futures = [
                pool.submit(_sign_worker, str(private_key_path), algorithm, duration_s)
                for _ in range(count)
            ]
            results = [future.result() for future in futures]
            # Before the pool exits: its processes' CPU counts only while they live.
            figures[f"{label}_machine"] = window.finish()
        figures[f"{label}_per_s"] = round(sum(n / elapsed for n, elapsed in results), 1)
    figures["per_s"] = figures["all_processes_per_s"]
    return figures
