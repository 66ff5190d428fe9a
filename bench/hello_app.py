"""The ``hello`` baseline: a bare FastAPI app returning constant JSON.

Served by uvicorn with the same loop, HTTP parser and worker count as authgate, it
is the ceiling for any FastAPI route on this machine.
"""

from __future__ import annotations

from fastapi import FastAPI

app = FastAPI()

_BODY = {"message": "hello"}


@app.get("/")
async def hello() -> dict[str, str]:
    return _BODY
