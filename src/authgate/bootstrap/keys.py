"""Signing keys from settings: the static ring (PEM files) or the database ring's
lifecycle service and loader. Shared by the server, the CLI and any other entry point."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from authgate.config import Settings

if TYPE_CHECKING:
    from authgate.clock import Clock
    from authgate.crypto.access_token_verifier import TrustedKeysByKid
    from authgate.crypto.keyring import KeyRing, RingLoader
    from authgate.crypto.keys import KeySet
    from authgate.server_secret import ServerSecret
    from authgate.services.signing_keys import SigningKeyService
    from authgate.storage.unit_of_work import SqlUnitOfWorkFactory


def static_key_set(settings: Settings) -> KeySet | None:
    """The static ring from PEM files or PEM text (JWT_PRIVATE_KEY_PATH or
    JWT_PRIVATE_KEY set), or None for the database ring, which
    :meth:`Services.load_key_ring` loads (and creates on first start)."""
    if not settings.static_key_ring:
        return None
    from authgate.crypto.keys import load_key_set

    private_pem, public_pem = settings.jwt_private_key, settings.jwt_public_key
    return load_key_set(
        private_key_path=settings.jwt_private_key_path,
        public_key_path=settings.jwt_public_key_path,
        algorithm=settings.jwt_algorithm,
        extra_public_key_paths=settings.previous_public_key_paths,
        private_key_pem=None if private_pem is None else private_pem.get_secret_value().encode(),
        public_key_pem=None if public_pem is None else public_pem.encode(),
    )


def trusted_keys_by_kid(key_set: KeySet) -> TrustedKeysByKid:
    """A fixed key set's lookup ``kid -> keys``, as the verifier kit takes it (tests and
    benchmarks; the server itself uses its refreshing ring's ``trusted_keys``)."""
    from authgate.crypto.keyring import KeyRing

    return KeyRing(key_set, static=True).trusted_keys


def key_ring_service(
    settings: Settings, *, uow: SqlUnitOfWorkFactory, clock: Clock, server_secret: ServerSecret
) -> tuple[SigningKeyService, RingLoader]:
    """The database ring's lifecycle service and loader."""
    from authgate.crypto.key_encryption import PrivateKeySealer, SealedKeyMaker
    from authgate.crypto.keyring import RingLoader
    from authgate.services.signing_keys import KeyRingPolicy, SigningKeyService

    sealer = PrivateKeySealer(server_secret.key_encryption_keys())
    service = SigningKeyService(
        uow=uow,
        clock=clock,
        maker=SealedKeyMaker(sealer),
        policy=KeyRingPolicy(
            algorithm=settings.jwt_algorithm,
            # Published for a whole JWKS cache lifetime after every instance has it.
            publish_before_use_seconds=settings.jwks_max_age_seconds
            + math.ceil(settings.key_ring_refresh_seconds),
            token_lifetime_seconds=settings.access_token_ttl_seconds,
            rotation_days=settings.key_rotation_days,
        ),
    )
    return service, RingLoader(uow, sealer)


def published_algorithms(settings: Settings, key_ring: KeyRing) -> tuple[str, ...]:
    """What the discovery document lists: the configured algorithm (new keys) and those
    of the keys published when it is built (a ring may keep an older algorithm's key
    while its tokens live)."""
    names = {settings.jwt_algorithm}
    if key_ring.key_set is not None:
        names.update(key.algorithm for key in key_ring.key_set.by_kid.values())
    return tuple(sorted(names))
