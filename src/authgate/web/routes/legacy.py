"""The Serverless seed's API at the root: thin adapters over the same services.

``/secure`` shows the declarative guard; ``/secureWithFunction`` shows the manual
check, one explicit call in the handler. Copy whichever fits your own routes.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from authgate.domain.emails import lookup_key
from authgate.web.deps import Accounts, Client, Sessions
from authgate.web.guard import CurrentClaims, authenticate
from authgate.web.responses import private_json, sign_up_response, token_response
from authgate.web.schemas import (
    CredentialsSignIn,
    EmptyResponse,
    LegacyRefreshRequest,
    LegacyRegister,
    SecureResponse,
    SignUpPendingResponse,
    TokenResponse,
)

router = APIRouter(tags=["serverless seed"])


def _secure_answer(user_id: str) -> Response:
    return private_json({"message": "You are authenticated.", "userId": user_id})


async def secure(claims: CurrentClaims) -> Response:
    """Protected declaratively: the ``CurrentClaims`` parameter is the guard."""
    return _secure_answer(claims.sub)


async def secure_with_function(request: Request) -> Response:
    """Protected by hand: one explicit call, then the handler's own logic."""
    claims = await authenticate(request, accept_legacy_header=True)
    return _secure_answer(claims.sub)


# The seed answers GET and POST on each. One route per method, so each OpenAPI
# operation has its own id (one route for both gives two operations one id).
for _method in ("GET", "POST"):
    router.add_api_route(
        "/secure",
        secure,
        methods=[_method],
        response_model=SecureResponse,
        operation_id=f"secure_{_method.lower()}",
    )
    router.add_api_route(
        "/secureWithFunction",
        secure_with_function,
        methods=[_method],
        response_model=SecureResponse,
        operation_id=f"secure_with_function_{_method.lower()}",
    )
router.add_api_route(
    "/secureWithFuction",  # the seed's spelling, kept so its clients keep working
    secure_with_function,
    methods=["GET", "POST"],
    response_model=SecureResponse,
    include_in_schema=False,
)


@router.post("/refreshToken", response_model=TokenResponse)
async def refresh_token(body: LegacyRefreshRequest, sessions: Sessions, client: Client) -> Response:
    expected = lookup_key(body.email) if body.email is not None else None
    pair = await sessions.refresh(body.refreshToken, client, expected_email_key=expected)
    return token_response(pair)


@router.post(
    "/register",
    response_model=TokenResponse,
    responses={202: {"model": SignUpPendingResponse, "description": "EMAIL_VERIFICATION=required"}},
)
async def register(body: LegacyRegister, accounts: Accounts, client: Client) -> Response:
    return sign_up_response(await accounts.sign_up(body.to_sign_up(), client))


@router.post("/login", response_model=TokenResponse)
async def login(body: CredentialsSignIn, accounts: Accounts, client: Client) -> Response:
    pair = await accounts.sign_in(body.email, body.password, client)
    return token_response(pair)


@router.post("/revokeToken", response_model=EmptyResponse)
async def revoke_token(
    body: LegacyRefreshRequest, sessions: Sessions, client: Client
) -> EmptyResponse:
    expected = lookup_key(body.email) if body.email is not None else None
    await sessions.revoke(body.refreshToken, client, expected_email_key=expected)
    return EmptyResponse()
