"""Bringing the seeds' users over: ``authgate import serverless-seed|timelapseme-seed``.

One job: read a seed's own user table (read only), turn each row into an authgate
account (names, a verified or unverified address, a password hash wrapped in argon2id
by :mod:`authgate.crypto.legacy_hashes`, or a provider to bind at first sign-in), and
add the ones whose address is new. Nothing is ever overwritten, so importing twice
adds nothing.

One module per seed schema (:mod:`.serverless_seed`, :mod:`.timelapseme_seed`) turns
rows into :class:`.records.SeedUser`; :mod:`.source` reads the seed's MySQL/MariaDB
database; :mod:`.service` plans and applies the import through the unit of work.
May import ``domain``, ``crypto`` and ``storage`` (it is run by the CLI, an entry
point), never ``web``.
"""
