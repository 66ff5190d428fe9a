"""RFC 7662 token introspection: ask the authorization server whether a token is live.

A signature proves who issued a token, not that its session was not revoked since.
Routes that must see a revocation before the token expires ask the introspection
endpoint on every request (a network round trip: use it where it matters).
"""

from __future__ import annotations

import base64
import json
import logging
from typing import Final
from urllib.parse import quote_plus

import httpx

from authgate.resource.errors import VerifierUnavailable
from authgate.resource.keys import _secure_url

logger = logging.getLogger(__name__)

_MAX_RESPONSE_BYTES: Final = 64 * 1024


class Introspection:
    """An RFC 7662 client authenticated as a confidential client (the resource server).

    ``auth_method`` is ``client_secret_basic`` (RFC 6749 §2.3.1, the default every
    server must support) or ``client_secret_post``.
    """

    def __init__(
        self,
        url: str,
        *,
        client_id: str,
        client_secret: str,
        http_client: httpx.AsyncClient | None = None,
        timeout_seconds: float = 5.0,
        auth_method: str = "client_secret_basic",
        allow_http: bool = False,
    ) -> None:
        if auth_method not in ("client_secret_basic", "client_secret_post"):
            raise ValueError("auth_method is client_secret_basic or client_secret_post")
        if not client_id or not client_secret:
            raise ValueError("introspection needs a client_id and a client_secret")
        self.url = _secure_url(url, allow_http=allow_http)
        self._client_id = client_id
        self._secret = client_secret
        self._http = http_client
        self._timeout = timeout_seconds
        self._auth_method = auth_method

    def __repr__(self) -> str:  # never the secret
        return f"Introspection({self.url!r}, client_id={self._client_id!r})"

    async def is_active(self, token: str) -> bool:
        """True only for an answer ``{"active": true, ...}``; raises
        :class:`VerifierUnavailable` when the endpoint cannot answer."""
        form = {"token": token, "token_type_hint": "access_token"}
        headers = {"Accept": "application/json"}
        if self._auth_method == "client_secret_basic":
            # RFC 6749 §2.3.1: both parts are form-urlencoded before base64.
            pair = f"{quote_plus(self._client_id)}:{quote_plus(self._secret)}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        else:
            form |= {"client_id": self._client_id, "client_secret": self._secret}
        try:
            if self._http is not None:
                body = await self._post(self._http, form, headers)
            else:
                async with httpx.AsyncClient(timeout=self._timeout) as client:
                    body = await self._post(client, form, headers)
        except httpx.HTTPError as exc:
            raise VerifierUnavailable(f"introspection failed: {type(exc).__name__}") from None
        try:
            answer = json.loads(body)
        except (ValueError, RecursionError):  # RecursionError: JSON nested too deep
            raise VerifierUnavailable("introspection answer is not JSON") from None
        if not isinstance(answer, dict) or "active" not in answer:
            raise VerifierUnavailable("introspection answer has no active member")
        # RFC 7662 §2.2: only a JSON true is active; "true", 1 and a missing member are not.
        return answer["active"] is True

    async def _post(
        self, client: httpx.AsyncClient, form: dict[str, str], headers: dict[str, str]
    ) -> bytes:
        async with client.stream(
            "POST",
            self.url,
            data=form,
            headers=headers,
            timeout=self._timeout,
            follow_redirects=False,
        ) as response:
            if response.status_code != 200:
                raise VerifierUnavailable(f"introspection answered {response.status_code}")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > _MAX_RESPONSE_BYTES:
                    raise VerifierUnavailable("introspection answer too large")
            return bytes(body)
