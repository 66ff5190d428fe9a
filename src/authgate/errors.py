"""Domain errors: a stable machine ``code``, a human message, and no HTTP.

The web layer maps each class to a status code in exactly one place
(``authgate.web.problems``). Hierarchy::

    AuthError
    ├── InvalidInput              the request is well-formed JSON but its values are refused
    │   └── WeakPassword          password too short, too long, or otherwise refused
    ├── Conflict
    │   ├── EmailTaken            an account already uses this (normalized) email
    │   ├── IdentityTaken         this provider identity already belongs to an account
    │   └── ProviderAlreadyLinked the account with this email has another identity of this provider
    ├── NotFound
    │   ├── AccountNotFound       provider sign-in for an identity with no account
    │   ├── ProviderNotEnabled    the named identity provider is not configured
    │   ├── SessionNotFound       no live session of this user has that id (another user's alike)
    │   └── FeatureDisabled       a route whose feature the configuration turns off
    ├── Unauthenticated           every 401: the caller did not prove who they are
    │   ├── InvalidCredentials    unknown email or wrong password (one answer for both)
    │   ├── InvalidAccessToken    missing, malformed, expired or forged Bearer token
    │   ├── InvalidRefreshToken   unknown, expired or revoked refresh token
    │   │   └── RefreshTokenReused  an already-rotated token came back: its family is revoked
    │   └── InvalidIdToken        a provider's ID token failed verification
    ├── InvalidOneTimeToken       a verification, reset or email-change token that is unknown,
    │                             used, expired or of another purpose (400)
    ├── Forbidden                 authenticated, but refused (403)
    │   ├── EmailNotVerified      EMAIL_VERIFICATION=required and the address is not verified
    │   └── AccountDisabled       an operator disabled the account
    ├── TooManyRequests           a throttle refused the request; carries retry_after_seconds
    │   └── AccountLocked         too many password attempts on one account (releases itself)
    ├── OAuthError                an RFC 6749 §5.2 error of /oauth/* (``code`` is the RFC's)
    │   ├── OAuthInvalidRequest   missing, repeated or malformed parameter
    │   ├── InvalidClient         unknown client or failed client authentication (401)
    │   ├── InvalidGrant          the refresh token is invalid, expired, revoked or another's
    │   ├── UnauthorizedClient    the client may not use this grant type
    │   └── UnsupportedGrantType  a grant type authgate does not offer (e.g. ``password``)
    └── Unavailable               a dependency (database, provider keys) cannot answer now
        ├── TransactionConflict   deadlock or Galera certification conflict (MySQL error 1213)
        │                         (retried by services.transactions, 503 once attempts run out)
        ├── MailDeliveryFailed    the SMTP server refused or could not be reached (drainer only)
        └── ProviderUnavailable   the provider's signing keys cannot be obtained
"""

from __future__ import annotations


class AuthError(Exception):
    code: str = "auth_error"
    message: str = "The request could not be completed."

    def __init__(self, message: str | None = None, *, detail_for_log: str | None = None) -> None:
        # ``message`` is safe to show to the client; ``detail_for_log`` is not and
        # only ever reaches the server log (verification failures, for example).
        self.message = message or type(self).message
        self.detail_for_log = detail_for_log
        super().__init__(self.message)


class InvalidInput(AuthError):
    code = "invalid_input"
    message = "The request contains invalid values."


class WeakPassword(InvalidInput):
    code = "weak_password"
    message = "The password does not meet the password policy."


class Conflict(AuthError):
    code = "conflict"
    message = "The request conflicts with existing data."


class EmailTaken(Conflict):
    code = "email_taken"
    message = "An account with this email already exists."


class IdentityTaken(Conflict):
    code = "identity_taken"
    message = "This identity is already linked to an account."


class ProviderAlreadyLinked(Conflict):
    # A second identity of one provider (a new Google ``sub``) with the address of an
    # account that already has one: a re-created Workspace user, a domain that changed
    # hands. Not linked (that would hand the account to whoever holds the new identity)
    # and no second account claims the address.
    code = "provider_already_linked"
    message = "The account with this email is already linked to another identity of this provider."


class NotFound(AuthError):
    code = "not_found"
    message = "Not found."


class AccountNotFound(NotFound):
    code = "account_not_found"
    message = "No account exists for this identity."


class ProviderNotEnabled(NotFound):
    code = "provider_not_enabled"
    message = "This identity provider is not enabled."


class Unauthenticated(AuthError):
    code = "unauthenticated"
    message = "Authentication failed."


class InvalidCredentials(Unauthenticated):
    code = "invalid_credentials"
    message = "The email or password is incorrect."


class InvalidAccessToken(Unauthenticated):
    code = "invalid_token"
    message = "The access token is missing, malformed, expired or invalid."


class InvalidRefreshToken(Unauthenticated):
    code = "invalid_refresh_token"
    message = "The refresh token is invalid, expired or revoked."


class RefreshTokenReused(InvalidRefreshToken):
    # Same client-facing message as any invalid refresh token: telling a thief
    # that reuse was detected helps nobody but the thief.
    code = "invalid_refresh_token"


class InvalidIdToken(Unauthenticated):
    code = "invalid_id_token"
    message = "The identity provider's token could not be verified."


class InvalidOneTimeToken(AuthError):
    # 400, not 401: the caller is not authenticating, it presents a link's token.
    # One answer for unknown, used, expired and wrong-purpose tokens.
    code = "invalid_token"
    message = "The link is invalid or has expired. Request a new one."


class Forbidden(AuthError):
    code = "forbidden"
    message = "This action is not allowed."


class EmailNotVerified(Forbidden):
    code = "email_not_verified"
    message = "Verify your email address before signing in."


class SessionNotFound(NotFound):
    # One answer for unknown, ended and another user's sessions.
    code = "session_not_found"
    message = "No such session."


class AccountDisabled(Forbidden):
    code = "account_disabled"
    message = "This account is disabled."


class FeatureDisabled(NotFound):
    code = "feature_disabled"
    message = "This feature is not enabled on this server."


class TooManyRequests(AuthError):
    code = "too_many_requests"
    message = "Too many attempts. Try again later."

    def __init__(
        self,
        message: str | None = None,
        *,
        retry_after_seconds: int,
        detail_for_log: str | None = None,
    ) -> None:
        super().__init__(message, detail_for_log=detail_for_log)
        self.retry_after_seconds = max(1, retry_after_seconds)


class AccountLocked(TooManyRequests):
    # Same code and message as any throttle: the client learns to wait, nothing more.
    lock_started: bool = False  # the attempt that crossed the limit, for the audit trail


class OAuthError(AuthError):
    # The error codes are RFC 6749 §5.2's; web.problems answers them in its body form.
    code = "invalid_request"
    message = "The request is invalid."


class OAuthInvalidRequest(OAuthError):
    code = "invalid_request"
    message = "The request is missing a parameter, repeats one, or is otherwise malformed."


class InvalidClient(OAuthError):
    code = "invalid_client"
    message = "Client authentication failed."


class InvalidGrant(OAuthError):
    # One answer for unknown, expired, revoked, reused and another client's tokens.
    code = "invalid_grant"
    message = "The refresh token is invalid, expired, revoked or issued to another client."


class UnauthorizedClient(OAuthError):
    code = "unauthorized_client"
    message = "This client may not use this grant type."


class UnsupportedGrantType(OAuthError):
    code = "unsupported_grant_type"
    message = "The grant type is not supported."


class Unavailable(AuthError):
    code = "unavailable"
    message = "The service is temporarily unavailable."


class TransactionConflict(Unavailable):
    """The database rolled the transaction back to resolve a conflict with another one.

    Nothing of it was committed, so the whole unit of work may run again; the
    client sees the plain ``unavailable`` 503 only once the retries run out."""

    code = "unavailable"


class MailDeliveryFailed(Unavailable):
    # Raised by mail senders to the outbox drainer only; never reaches a request.
    code = "mail_delivery_failed"
    message = "The mail could not be delivered."


class ProviderUnavailable(Unavailable):
    code = "provider_unavailable"
    message = "The identity provider's signing keys cannot be obtained right now."
