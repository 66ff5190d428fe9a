"""``AuthThrottles``: the throttling policy of the auth routes.

Two kinds of limit:

* **per client address**, per scope: ``auth`` (every password or provider sign-in
  and sign-up), ``signup`` (account creation, on top of ``auth``), ``refresh``,
  ``revoke`` (each revocation takes the database's write lock).
  IPv6 clients are counted per /64, the block one subscriber usually gets;
  counting single IPv6 addresses would give each attacker 2**64 fresh limits.
* **per target account**: password attempts per normalized email, so spraying one
  account from many addresses is stopped too. Each attempt is counted atomically
  *before* the password is verified (``begin_attempt``) and a correct password
  clears the count (``record_success``), so what is left counted is failures.
  Counting first is what makes the limit hold under concurrency: had the count
  been read before verifying and raised after, a hundred parallel guesses would
  all have read "not locked" and all been verified. Once the limit is reached the
  account is locked until the window ends; the lock releases itself. A locked
  account answers the same whether the password was right or not, and unknown
  emails are counted too, so the lock does not reveal which accounts exist.

When the counter store (Redis) cannot be reached:

* the **account lock fails closed**: ``begin_attempt`` raises ``Unavailable``
  (503). The lock is the only limit between an attacker and
  unlimited password guesses, so password sign-in stops rather than run unguarded.
* the **per-address limits fail open** (logged): they shed load, they do not guard
  a secret (refresh tokens and provider ID tokens cannot be guessed), and failing
  closed would turn a Redis outage into an outage of every refresh.
* ``record_success`` **fails open** (logged): the password was proven; the cost of
  not resetting is a failure count that still expires with its window.

With ``enabled=False`` every method returns at once without touching the store.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Literal

from authgate.errors import AccountLocked, TooManyRequests, Unavailable
from authgate.throttling.ports import Throttle, ThrottleStoreUnavailable
from authgate.throttling.rate import RateLimit

logger = logging.getLogger(__name__)

IpScope = Literal["auth", "signup", "refresh", "revoke", "mail"]

DEFAULT_AUTH_PER_IP = RateLimit.parse("100/minute")
# Offices and universities put many people behind one address: generous enough
# for a room of sign-ups, tight enough to slow scripted account creation.
DEFAULT_SIGNUP_PER_IP = RateLimit.parse("20/hour")
# One refresh per client per access-token lifetime (15 minutes by default), so
# even a large NAT stays far below this.
DEFAULT_REFRESH_PER_IP = RateLimit.parse("300/minute")
# Sign-outs: far rarer than refreshes (one per session), but each one takes the
# database's write lock (SQLite has one for the whole file), so an unthrottled
# stream of revocations would stall every sign-in and refresh behind it.
DEFAULT_REVOKE_PER_IP = RateLimit.parse("60/minute")
DEFAULT_FAILURES_PER_ACCOUNT = RateLimit.parse("10/15 minutes")
# Requests that send mail (verification resend, forgot password, email change):
# a mailbox must not be flooded, and the sender's reputation is shared by all.
DEFAULT_MAIL_PER_IP = RateLimit.parse("20/hour")
DEFAULT_MAIL_PER_ACCOUNT = RateLimit.parse("5/hour")

_ACCOUNT = "account-failures"
_MAIL_ACCOUNT = "account-mail"


class AuthThrottles:
    def __init__(
        self,
        *,
        throttle: Throttle,
        enabled: bool = True,
        auth_per_ip: RateLimit = DEFAULT_AUTH_PER_IP,
        signup_per_ip: RateLimit = DEFAULT_SIGNUP_PER_IP,
        refresh_per_ip: RateLimit = DEFAULT_REFRESH_PER_IP,
        revoke_per_ip: RateLimit = DEFAULT_REVOKE_PER_IP,
        failures_per_account: RateLimit = DEFAULT_FAILURES_PER_ACCOUNT,
        mail_per_ip: RateLimit = DEFAULT_MAIL_PER_IP,
        mail_per_account: RateLimit = DEFAULT_MAIL_PER_ACCOUNT,
    ) -> None:
        self._throttle = throttle
        self.enabled = enabled
        self._ip_limits: dict[str, RateLimit] = {
            "auth": auth_per_ip,
            "signup": signup_per_ip,
            "refresh": refresh_per_ip,
            "revoke": revoke_per_ip,
            "mail": mail_per_ip,
        }
        self._account_limit = failures_per_account
        self._mail_account_limit = mail_per_account

    async def check_ip(self, scope: IpScope, address: str) -> None:
        """Count one request from ``address``; TooManyRequests when over the scope's limit."""
        if not self.enabled:
            return
        limit = self._ip_limits.get(scope)
        if limit is None:
            raise ValueError(f"unknown throttle scope {scope!r}")
        try:
            decision = await self._throttle.hit(f"ip-{scope}", client_key(address), limit)
        except ThrottleStoreUnavailable as exc:
            logger.warning("throttle store unavailable; %s limit not applied: %s", scope, exc)
            return
        if not decision.allowed:
            raise TooManyRequests(
                retry_after_seconds=decision.retry_after_seconds,
                detail_for_log=f"per-address limit '{scope}' ({limit}) reached",
            )

    async def begin_attempt(self, email_key: str) -> None:
        """Count one password attempt on the account; AccountLocked past the limit.

        Called before the password is verified: of N concurrent attempts, only
        the first ``amount`` in the window ever reach the hasher."""
        if not self.enabled:
            return
        try:
            decision = await self._throttle.hit(_ACCOUNT, email_key, self._account_limit)
        except ThrottleStoreUnavailable as exc:
            raise _unavailable(exc) from exc
        if not decision.allowed:
            locked = AccountLocked(
                retry_after_seconds=decision.retry_after_seconds,
                detail_for_log=f"account locked after {self._account_limit.amount} attempts",
            )
            locked.lock_started = decision.count == self._account_limit.amount + 1
            raise locked

    async def check_mail_account(self, account_key: str) -> None:
        """Count one mail-sending request for the account (or the address, for one
        without an account: the same count either way, so the limit reveals nothing).
        Fails open like the per-address limits: it sheds load, it guards no secret."""
        if not self.enabled:
            return
        limit = self._mail_account_limit
        try:
            decision = await self._throttle.hit(_MAIL_ACCOUNT, account_key, limit)
        except ThrottleStoreUnavailable as exc:
            logger.warning("throttle store unavailable; mail limit not applied: %s", exc)
            return
        if not decision.allowed:
            raise TooManyRequests(
                retry_after_seconds=decision.retry_after_seconds,
                detail_for_log=f"per-account mail limit ({limit}) reached",
            )

    async def record_success(self, email_key: str) -> None:
        """Forget the account's counted attempts after a correct password."""
        if not self.enabled:
            return
        try:
            await self._throttle.reset(_ACCOUNT, email_key, self._account_limit)
        except ThrottleStoreUnavailable as exc:
            logger.warning("throttle store unavailable; failure count not reset: %s", exc)


def client_key(address: str) -> str:
    """The unit a per-address limit counts: the IPv4 address, or the IPv6 /64.

    Anything that is not an IP address (a test client's name, an empty string when
    the server could not tell) is counted as given."""
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            # A dual-stack socket reports IPv4 clients as ::ffff:a.b.c.d.
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{ip.exploded}/64", strict=False))
    return str(ip)


def _unavailable(exc: ThrottleStoreUnavailable) -> Unavailable:
    return Unavailable(
        "Sign-in is temporarily unavailable. Try again shortly.",
        detail_for_log=f"throttle store unavailable; account lock cannot be read: {exc}",
    )
