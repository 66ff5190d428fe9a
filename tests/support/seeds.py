"""The seeds' own MariaDB tables, from their DDL (FACTS.md "The seeds' tables"), in a
uniquely named database per test, dropped afterwards.

Rows are filled with hashes made by the seeds' algorithms: SHA3-512 hex of the UTF-8
password (js-sha3) and bcrypt ``$2b$10$`` (node-bcrypt; pyca/bcrypt makes the same).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import bcrypt
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine

SERVERLESS_DDL = """
CREATE TABLE `USER_LIST` (
 `CIF` int(11) NOT NULL AUTO_INCREMENT,
 `EMAIL` varchar(50) COLLATE utf8_bin NOT NULL,
 `PASSWORD` char(130) COLLATE utf8_bin NOT NULL,
 `DISPLAY_NAME` varchar(16) COLLATE utf8_bin NOT NULL,
 `ROLE` int(11) NOT NULL,
 `REFRESH_TOKEN` char(32) NOT NULL,
 `LAST_LOGIN_DATE` DATETIME NOT NULL,
 `REGISTER_DATE` DATETIME NOT NULL,
 UNIQUE KEY `USER_LIST_CIF` (`CIF`) USING BTREE
) ENGINE=InnoDB DEFAULT CHARSET=utf8 COLLATE=utf8_bin
"""

_TIMELAPSE_NAMES = {
    "13bb39c": "`firstName` varchar(128) NOT NULL,\n  `lastName` varchar(128) NOT NULL,",
    "nickname": "`nickname` varchar(128) NOT NULL,",
}


def timelapse_ddl(version: str) -> list[str]:
    return [
        f"""
CREATE TABLE `Users` (
  `id` int(11) NOT NULL AUTO_INCREMENT,
  `email` varchar(512) NOT NULL,
  `passwordHash` varchar(256) DEFAULT NULL,
  `authenticationMethod` enum('APPLE','GOOGLE','CREDENTIALS') NOT NULL,
  {_TIMELAPSE_NAMES[version]}
  `createdAt` datetime NOT NULL,
  `updatedAt` datetime NOT NULL,
  PRIMARY KEY (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci""",
        """
CREATE TABLE `RefreshTokens` (
  `id` int(11) NOT NULL AUTO_INCREMENT,
  `value` varchar(256) NOT NULL,
  `issued` datetime, `expires` datetime,
  `createdAt` datetime NOT NULL, `updatedAt` datetime NOT NULL,
  `UserId` int(11) DEFAULT NULL,
  PRIMARY KEY (`id`), UNIQUE KEY `value` (`value`), KEY `UserId` (`UserId`),
  CONSTRAINT `RefreshTokens_ibfk_1` FOREIGN KEY (`UserId`) REFERENCES `Users` (`id`)
    ON DELETE SET NULL ON UPDATE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci""",
    ]


def sha3_hex(password: str) -> str:
    return hashlib.sha3_512(password.encode("utf-8")).hexdigest()


def bcrypt_hash(password: str) -> str:
    # node-bcrypt's default rounds in the seed: 10.
    return bcrypt.hashpw(password.encode("utf-8")[:72], bcrypt.gensalt(10)).decode("ascii")


def serverless_row(email: str, password_hex: str, display: str) -> dict[str, Any]:
    return {
        "EMAIL": email,
        "PASSWORD": password_hex,
        "DISPLAY_NAME": display,
        "ROLE": 1,
        "REFRESH_TOKEN": uuid.uuid4().hex,
        "LAST_LOGIN_DATE": "2021-03-01 10:00:00",
        "REGISTER_DATE": "2021-02-01 10:00:00",
    }


def timelapse_row(
    email: str, method: str, password_hash: str | None, **names: str
) -> dict[str, Any]:
    return {
        "email": email,
        "passwordHash": password_hash,
        "authenticationMethod": method,
        **names,
        "createdAt": "2022-05-01 10:00:00",
        "updatedAt": "2022-05-01 10:00:00",
    }


class SeedDatabase:
    """A seed's database on the test MariaDB server."""

    def __init__(self, server: URL) -> None:
        self.url = server.set(database=f"seed_{uuid.uuid4().hex[:16]}")

    @property
    def cli_url(self) -> str:
        """As an operator would type it: mysql://, the driver translated by the CLI."""
        return self.url.set(drivername="mysql").render_as_string(hide_password=False)

    async def create(self, ddl: Sequence[str]) -> None:
        server = create_async_engine(self.url.set(database=""))
        try:
            async with server.begin() as connection:
                await connection.execute(text(f"CREATE DATABASE `{self.url.database}`"))
        finally:
            await server.dispose()
        await self.execute(ddl)

    async def execute(self, statements: Sequence[str]) -> None:
        engine = create_async_engine(self.url)
        try:
            async with engine.begin() as connection:
                for statement in statements:
                    await connection.execute(text(statement))
        finally:
            await engine.dispose()

    async def insert(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        engine = create_async_engine(self.url)
        try:
            async with engine.begin() as connection:
                for row in rows:
                    columns = ", ".join(f"`{name}`" for name in row)
                    values = ", ".join(f":{name}" for name in row)
                    # Table and column names are this module's constants; values are bound.
                    statement = f"INSERT INTO `{table}` ({columns}) VALUES ({values})"  # noqa: S608
                    await connection.execute(text(statement), dict(row))
        finally:
            await engine.dispose()

    async def drop(self) -> None:
        server = create_async_engine(self.url.set(database=""))
        try:
            async with server.begin() as connection:
                await connection.execute(text(f"DROP DATABASE IF EXISTS `{self.url.database}`"))
        finally:
            await server.dispose()
