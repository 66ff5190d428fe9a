"""Dependencies as named ``Annotated`` aliases, so routes read ``accounts: Accounts``.

All ``async def``: a plain ``def`` dependency would run in the thread pool.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from authgate.domain.models import ClientInfo
from authgate.services.account_deletion import AccountDeletionService
from authgate.services.accounts import AccountService
from authgate.services.email_verification import EmailVerificationService
from authgate.services.passwords_lifecycle import PasswordLifecycleService
from authgate.services.provider_accounts import ProviderAccountService
from authgate.services.sessions import SessionService
from authgate.services.user_sessions import UserSessionService
from authgate.web.container import Container


async def _container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


async def _accounts(request: Request) -> AccountService:
    container: Container = request.app.state.container
    return container.accounts


async def _sessions(request: Request) -> SessionService:
    container: Container = request.app.state.container
    return container.sessions


async def _provider_accounts(request: Request) -> ProviderAccountService:
    container: Container = request.app.state.container
    return container.provider_accounts


async def _email_verification(request: Request) -> EmailVerificationService:
    container: Container = request.app.state.container
    return container.email_verification


async def _passwords(request: Request) -> PasswordLifecycleService:
    container: Container = request.app.state.container
    return container.passwords


async def _user_sessions(request: Request) -> UserSessionService:
    container: Container = request.app.state.container
    return container.user_sessions


async def _account_deletion(request: Request) -> AccountDeletionService:
    container: Container = request.app.state.container
    return container.account_deletion


AccountDeletion = Annotated[AccountDeletionService, Depends(_account_deletion)]
UserSessions = Annotated[UserSessionService, Depends(_user_sessions)]
EmailVerification = Annotated[EmailVerificationService, Depends(_email_verification)]
Passwords = Annotated[PasswordLifecycleService, Depends(_passwords)]
AppContainer = Annotated[Container, Depends(_container)]
ProviderAccounts = Annotated[ProviderAccountService, Depends(_provider_accounts)]
Accounts = Annotated[AccountService, Depends(_accounts)]
Sessions = Annotated[SessionService, Depends(_sessions)]


async def _client(request: Request) -> ClientInfo:
    # request.client is the socket peer, or the address a TRUSTED_PROXIES proxy
    # reported (uvicorn's proxy-headers middleware only believes those).
    address = request.client.host if request.client else None
    return ClientInfo(address=address, user_agent=request.headers.get("user-agent"))


Client = Annotated[ClientInfo, Depends(_client)]
