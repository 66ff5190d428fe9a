"""Request and response bodies. Field names are the seeds' (camelCase) on the wire."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from authgate.errors import InvalidInput
from authgate.services.accounts import SignUp
from authgate.services.password_policy import MAX_PASSWORD_LENGTH

# format=email documents the field (and lets schema-driven clients and fuzzers
# produce addresses); the syntax itself is checked by email-validator in the domain.
Email = Annotated[
    str,
    StringConstraints(min_length=1, max_length=320),
    Field(json_schema_extra={"format": "email"}),
]
Password = Annotated[str, StringConstraints(min_length=1, max_length=MAX_PASSWORD_LENGTH)]
Name = Annotated[str, StringConstraints(max_length=100)]
RefreshTokenText = Annotated[str, StringConstraints(min_length=1, max_length=512)]


class _Body(BaseModel):
    # Unknown fields are ignored (clients of both seeds send extras); types are strict.
    model_config = ConfigDict(extra="ignore", strict=True)


class CredentialsSignUp(_Body):
    """TimeLapseMe ``/api/v1/signup/credentials``."""

    email: Email
    password: Password
    passwordConfirm: Password | None = None
    firstName: Name = ""
    lastName: Name = ""

    def to_sign_up(self) -> SignUp:
        if self.passwordConfirm is not None and self.passwordConfirm != self.password:
            raise InvalidInput("password and passwordConfirm do not match.")
        return SignUp(
            email=self.email,
            password=self.password,
            given_name=self.firstName,
            family_name=self.lastName,
            display_name=self._display_name(),
        )

    def _display_name(self) -> str:
        return ""


class LegacyRegister(CredentialsSignUp):
    """Serverless ``/register``: ``displayName``; the v1 body is accepted too."""

    displayName: Annotated[str, StringConstraints(max_length=200)] = ""

    def _display_name(self) -> str:
        return self.displayName


class CredentialsSignIn(_Body):
    email: Email
    password: Password


ClientText = Annotated[str, StringConstraints(min_length=1, max_length=256)]


class ClientSignIn(CredentialsSignIn):
    """``/api/v1/auth/credentials``: optionally for a registered OAuth client, whose
    session then refreshes only at /oauth/token with that client's authentication.
    A confidential client sends its secret too (as client_secret_post would)."""

    clientId: ClientText | None = None
    clientSecret: ClientText | None = None


class RefreshRequest(_Body):
    refreshToken: RefreshTokenText


class LegacyRefreshRequest(RefreshRequest):
    # The Serverless seed sent the email with the token; when given it must match.
    email: Email | None = None


IdToken = Annotated[str, StringConstraints(min_length=1, max_length=16_384)]
Nonce = Annotated[str, StringConstraints(min_length=1, max_length=512)]


class ProviderSignIn(_Body):
    """TimeLapseMe ``/api/v1/auth/{provider}``: the provider's ID token."""

    jwt: IdToken
    nonce: Nonce | None = None


class ProviderSignUp(ProviderSignIn):
    """``/api/v1/signup/{provider}``; names win over the token's (Apple sends them once)."""

    firstName: Name = ""
    lastName: Name = ""


class TokenResponse(BaseModel):
    accessToken: str
    refreshToken: str
    tokenType: str = "Bearer"
    expiresIn: int = Field(description="Access token lifetime in seconds")


class EmptyResponse(BaseModel):
    pass


class MeResponse(BaseModel):
    userId: str
    email: str | None
    firstName: str
    lastName: str
    displayName: str
    emailVerified: bool
    providers: list[str] = Field(
        description='How the account can sign in: "credentials" and identity provider names'
    )


class SecureResponse(BaseModel):
    message: str
    userId: str


class HealthResponse(BaseModel):
    status: str


# --- Account lifecycle (issue 11): verification, reset, password and email change ---
OneTimeTokenText = Annotated[str, StringConstraints(min_length=1, max_length=128)]


class EmailVerifyRequest(_Body):
    token: OneTimeTokenText


class PasswordForgotRequest(_Body):
    email: Email


class PasswordResetRequest(_Body):
    token: OneTimeTokenText
    password: Password


class PasswordChangeRequest(_Body):
    currentPassword: Password
    newPassword: Password


class EmailChangeRequest(_Body):
    newEmail: Email
    password: Password


class SignUpPendingResponse(BaseModel):
    emailVerificationRequired: bool = True


# --- Sessions a user can see and end (issue 11) ---
class SessionResponse(BaseModel):
    id: str
    createdAt: str
    lastUsedAt: str
    userAgent: str | None
    ipAddress: str | None
    current: bool = Field(description="Whether this is the session of the calling access token")


class SessionListResponse(BaseModel):
    sessions: list[SessionResponse]


class SessionsEndedResponse(BaseModel):
    ended: int = Field(description="How many other sessions were ended")


class AccountDeleteRequest(_Body):
    """``DELETE /api/v1/me``: the password, or for an account without one an ID
    token of a linked provider (``provider`` names it; by default each is tried)."""

    password: Password | None = None
    jwt: IdToken | None = None
    provider: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    nonce: Nonce | None = None
