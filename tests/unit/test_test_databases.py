"""Each checkout and each pytest-xdist worker gets a MariaDB database of its own."""

from __future__ import annotations

import pytest

from tests.support.databases import mariadb_url


def _name(monkeypatch: pytest.MonkeyPatch, worker: str | None, base: str | None = None) -> str:
    if worker is None:
        monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    else:
        monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
    if base is None:
        monkeypatch.delenv("AUTHGATE_TEST_MARIADB_URL", raising=False)
    else:
        monkeypatch.setenv("AUTHGATE_TEST_MARIADB_URL", base)
    database = mariadb_url().database
    assert database is not None
    return database


def test_each_worker_has_its_own_database(monkeypatch: pytest.MonkeyPatch) -> None:
    names = {_name(monkeypatch, worker) for worker in (None, "gw0", "gw1", "gw0")}
    assert len(names) == 3
    assert _name(monkeypatch, None).endswith("_main")
    assert _name(monkeypatch, "gw1").endswith("_gw1")
    assert all(name.startswith("authgate_test_") for name in names)


def test_the_configured_name_is_kept_and_the_result_fits_mariadb(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = "mysql+asyncmy://root@127.0.0.1:3306/{}?charset=utf8mb4"
    assert _name(monkeypatch, "gw3", url.format("authgate_ci")).startswith("authgate_ci_")
    # MariaDB refuses names over 64 characters: the configured name is cut, never
    # the checkout and worker that keep two runs apart.
    long_names = {_name(monkeypatch, worker, url.format("x" * 80)) for worker in ("gw1", "gw12")}
    assert {len(name) for name in long_names} == {64}
    assert {name.rsplit("_", 1)[1] for name in long_names} == {"gw1", "gw12"}
