"""Dependencies as named ``Annotated`` aliases, so routes read ``accounts: Accounts``.

Every service comes from one typed accessor, :func:`services_of`; the aliases pick
their service from it. All ``async def``: a plain ``def`` dependency would run in
the thread pool.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from starlette.applications import Starlette

from authgate.bootstrap import Services
from authgate.domain.models import ClientInfo
from authgate.services.account_deletion import AccountDeletionService
from authgate.services.accounts import AccountService
from authgate.services.email_verification import EmailVerificationService
from authgate.services.passwords_lifecycle import PasswordLifecycleService
from authgate.services.provider_accounts import ProviderAccountService
from authgate.services.sessions import SessionService
from authgate.services.user_sessions import UserSessionService

_T = TypeVar("_T")


def app_services(app: Starlette) -> Services:
    """The services ``create_app`` put on the app (the one untyped read)."""
    services: Services = app.state.services
    return services


def services_of(request: Request) -> Services:
    return app_services(request.app)


def _pick(service: Callable[[Services], _T]) -> Any:
    """``Depends`` on one service of :func:`services_of`."""

    async def dependency(request: Request) -> _T:
        return service(app_services(request.app))

    return Depends(dependency)


async def _services(request: Request) -> Services:
    return app_services(request.app)


AppServices = Annotated[Services, Depends(_services)]
Accounts = Annotated[AccountService, _pick(lambda s: s.accounts)]
Sessions = Annotated[SessionService, _pick(lambda s: s.sessions)]
ProviderAccounts = Annotated[ProviderAccountService, _pick(lambda s: s.provider_accounts)]
EmailVerification = Annotated[EmailVerificationService, _pick(lambda s: s.email_verification)]
Passwords = Annotated[PasswordLifecycleService, _pick(lambda s: s.passwords)]
UserSessions = Annotated[UserSessionService, _pick(lambda s: s.user_sessions)]
AccountDeletion = Annotated[AccountDeletionService, _pick(lambda s: s.account_deletion)]


async def _client(request: Request) -> ClientInfo:
    # request.client is the socket peer, or the address a TRUSTED_PROXIES proxy
    # reported (uvicorn's proxy-headers middleware only believes those).
    address = request.client.host if request.client else None
    return ClientInfo(address=address, user_agent=request.headers.get("user-agent"))


Client = Annotated[ClientInfo, Depends(_client)]
