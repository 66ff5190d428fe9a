"""Account lifecycle under /api/v1: email verification, password reset and change,
email change. Mail-sending routes answer 202: the mail leaves after the commit,
from the outbox drainer, and a failed send never reaches the answer."""

from __future__ import annotations

from fastapi import APIRouter, Response

from authgate.web.deps import AccountDeletion, Client, EmailVerification, Passwords
from authgate.web.guard import CurrentClaims, session_of
from authgate.web.responses import private_json
from authgate.web.schemas import (
    AccountDeleteRequest,
    EmailChangeRequest,
    EmailVerifyRequest,
    EmptyResponse,
    PasswordChangeRequest,
    PasswordForgotRequest,
    PasswordResetRequest,
)

router = APIRouter(prefix="/api/v1", tags=["account"])


def _accepted() -> Response:
    response = private_json({})
    response.status_code = 202
    return response


@router.post("/email/verify", response_model=EmptyResponse)
async def verify_email(
    body: EmailVerifyRequest, verification: EmailVerification, client: Client
) -> Response:
    """Use a link's token: verifies the address, or completes an email change."""
    await verification.verify(body.token, client)
    return private_json({})


@router.post("/email/verify/resend", status_code=202, response_model=EmptyResponse)
async def resend_verification(
    claims: CurrentClaims, verification: EmailVerification, client: Client
) -> Response:
    await verification.resend(claims.sub, client)
    return _accepted()


@router.post("/email/change", status_code=202, response_model=EmptyResponse)
async def change_email(
    body: EmailChangeRequest,
    claims: CurrentClaims,
    verification: EmailVerification,
    client: Client,
) -> Response:
    """202 whether or not the new address is free (see docs/api.md)."""
    await verification.request_email_change(claims.sub, body.newEmail, body.password, client)
    return _accepted()


@router.post("/password/forgot", status_code=202, response_model=EmptyResponse)
async def forgot_password(
    body: PasswordForgotRequest, passwords: Passwords, client: Client
) -> Response:
    """Always 202 with ``{}``, whether or not an account has the address."""
    await passwords.forgot(body.email, client)
    return _accepted()


@router.post("/password/reset", response_model=EmptyResponse)
async def reset_password(
    body: PasswordResetRequest, passwords: Passwords, client: Client
) -> Response:
    await passwords.reset(body.token, body.password, client)
    return private_json({})


@router.post("/password/change", response_model=EmptyResponse)
async def change_password(
    body: PasswordChangeRequest, claims: CurrentClaims, passwords: Passwords, client: Client
) -> Response:
    await passwords.change(
        claims.sub, session_of(claims), body.currentPassword, body.newPassword, client
    )
    return private_json({})


@router.delete("/me", response_model=EmptyResponse)
async def delete_account(
    claims: CurrentClaims,
    deletion: AccountDeletion,
    client: Client,
    body: AccountDeleteRequest | None = None,
) -> Response:
    """Delete the caller's account, confirmed by its password or a linked provider's
    new ID token; 401 and nothing deleted when the confirmation fails."""
    body = body or AccountDeleteRequest()
    await deletion.delete_own(
        claims.sub,
        client,
        password=body.password,
        id_token=body.jwt,
        provider=body.provider,
        nonce=body.nonce,
    )
    return private_json({})
