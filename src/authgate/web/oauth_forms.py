"""Reading an /oauth/* request: its form body and its client authentication.

RFC 6749 §3.2 and §2.3: the body is ``application/x-www-form-urlencoded`` (anything
else, JSON included, is ``invalid_request``), no parameter may repeat, a parameter
without a value counts as absent (§3.1), and a client authenticates with HTTP Basic
or with ``client_id``/``client_secret`` in the body, never both at once."""

from __future__ import annotations

import base64
import binascii
from urllib.parse import parse_qsl, unquote

from fastapi import Request

from authgate.errors import InvalidClient, OAuthInvalidRequest
from authgate.oauth.clients import PresentedClient

FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"
# No request of ours has more; a body with thousands of fields is an attack.
MAX_FIELDS = 16


async def read_form(request: Request) -> dict[str, str]:
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != FORM_MEDIA_TYPE:
        raise OAuthInvalidRequest(
            f"Send the parameters as {FORM_MEDIA_TYPE} (RFC 6749 §3.2).",
            detail_for_log=f"content type {media_type[:64]!r}",
        )
    # Bounded already: BodySizeLimit cuts a body over MAX_BODY_BYTES.
    body = await request.body()
    try:
        # The body is ASCII (percent-encoded); what it encodes must be UTF-8.
        pairs = parse_qsl(
            body.decode("ascii"),
            keep_blank_values=True,
            strict_parsing=bool(body),
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    except (UnicodeDecodeError, ValueError):
        raise OAuthInvalidRequest("The form body is malformed.") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise OAuthInvalidRequest(f"The parameter {name[:32]!r} is repeated.")
        form[name] = value
    # §3.1: sent without a value is treated as omitted.
    return {name: value for name, value in form.items() if value}


def presented_client(request: Request, form: dict[str, str]) -> PresentedClient:
    """The client's claimed identity and proof, from the Basic header or the body."""
    header = request.headers.get("authorization")
    in_body = "client_secret" in form
    if header is not None:
        if in_body:
            # §2.3: a client MUST NOT use more than one method in each request.
            raise OAuthInvalidRequest("Authenticate the client one way only.")
        basic_id, secret = _basic(header)
        if "client_id" in form and form["client_id"] != basic_id:
            raise OAuthInvalidRequest("client_id differs from the authenticated client.")
        return PresentedClient(basic_id, secret, "client_secret_basic")
    client_id = form.get("client_id")
    if client_id is None:
        raise InvalidClient("Name the client (client_id) or authenticate it.")
    if in_body:
        return PresentedClient(client_id, form["client_secret"], "client_secret_post")
    return PresentedClient(client_id, None, "none")


def _basic(header: str) -> tuple[str, str]:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        raise InvalidClient(detail_for_log="Authorization is not Basic")
    try:
        decoded = base64.b64decode(encoded.strip(" "), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise InvalidClient(detail_for_log="Basic credentials are not base64 of UTF-8") from None
    client_id, colon, secret = decoded.partition(":")
    if not colon:
        raise InvalidClient(detail_for_log="Basic credentials without a colon")
    try:
        # §2.3.1: both are form-urlencoded before Basic encoding.
        return (
            unquote(client_id.replace("+", " "), errors="strict"),
            unquote(secret.replace("+", " "), errors="strict"),
        )
    except UnicodeDecodeError:
        raise InvalidClient(detail_for_log="Basic credentials are not UTF-8") from None
