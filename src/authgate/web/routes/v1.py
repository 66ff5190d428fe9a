"""The TimeLapseMe seed's API under /api/v1."""

from __future__ import annotations

from fastapi import APIRouter, Response

from authgate.errors import AccountNotFound
from authgate.oauth.clients import PresentedClient
from authgate.services.provider_accounts import ProviderNames
from authgate.web.deps import Accounts, AppServices, Client, ProviderAccounts, Sessions
from authgate.web.guard import CurrentClaims
from authgate.web.responses import private, sign_up_response, token_response
from authgate.web.schemas import (
    ClientSignIn,
    CredentialsSignUp,
    EmptyResponse,
    MeResponse,
    ProviderSignIn,
    ProviderSignUp,
    RefreshRequest,
    SignUpPendingResponse,
    TokenResponse,
)

router = APIRouter(prefix="/api/v1", tags=["v1"])


@router.post("/refresh", response_model=TokenResponse)
async def refresh(body: RefreshRequest, sessions: Sessions, client: Client) -> Response:
    pair = await sessions.refresh(body.refreshToken, client)
    return token_response(pair)


@router.get("/me", response_model=MeResponse)
async def me(claims: CurrentClaims, accounts: Accounts, response: Response) -> MeResponse:
    found = await accounts.get_user_with_providers(claims.sub)
    if found is None:
        # A valid token for a deleted account: say so without guessing why.
        raise AccountNotFound("The account for this token no longer exists.")
    user, providers = found
    private(response)
    return MeResponse(
        userId=str(user.id),
        email=user.email,
        firstName=user.given_name,
        lastName=user.family_name,
        displayName=user.full_name,
        emailVerified=user.email_verified,
        providers=providers,
    )


@router.post("/revoke", response_model=EmptyResponse)
async def revoke(body: RefreshRequest, sessions: Sessions, client: Client) -> EmptyResponse:
    await sessions.revoke(body.refreshToken, client)
    return EmptyResponse()


@router.post(
    "/signup/credentials",
    response_model=TokenResponse,
    responses={202: {"model": SignUpPendingResponse, "description": "EMAIL_VERIFICATION=required"}},
)
async def sign_up(body: CredentialsSignUp, accounts: Accounts, client: Client) -> Response:
    return sign_up_response(await accounts.sign_up(body.to_sign_up(), client))


@router.post("/auth/credentials", response_model=TokenResponse)
async def sign_in(
    body: ClientSignIn, accounts: Accounts, client: Client, services: AppServices
) -> Response:
    oauth_client = None
    if body.clientId is not None:
        # Before the password: a wrong client costs no hashing and counts as a failure.
        presented = PresentedClient(
            body.clientId,
            body.clientSecret,
            "none" if body.clientSecret is None else "client_secret_post",
        )
        oauth_client = await services.oauth.client_for_sign_in(presented, client)
    pair = await accounts.sign_in(body.email, body.password, client, oauth_client=oauth_client)
    return token_response(pair)


# Registered after the credentials routes, which take precedence over {provider}.
@router.post("/signup/{provider}", response_model=TokenResponse)
async def provider_sign_up(
    provider: str,
    body: ProviderSignUp,
    accounts: ProviderAccounts,
    client: Client,
) -> Response:
    pair = await accounts.sign_up(
        provider,
        body.jwt,
        nonce=body.nonce,
        names=ProviderNames(first_name=body.firstName, last_name=body.lastName),
        client=client,
    )
    return token_response(pair)


@router.post("/auth/{provider}", response_model=TokenResponse)
async def provider_sign_in(
    provider: str,
    body: ProviderSignIn,
    accounts: ProviderAccounts,
    client: Client,
) -> Response:
    pair = await accounts.sign_in(provider, body.jwt, nonce=body.nonce, client=client)
    return token_response(pair)
