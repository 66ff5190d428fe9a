"""METRICS_PORT and METRICS_HOST: off by default, loopback by default, never PORT."""

from __future__ import annotations

import pytest

from authgate.config import SettingsError, load_settings


def test_metrics_are_off_and_loopback_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("METRICS_PORT", raising=False)
    monkeypatch.delenv("METRICS_HOST", raising=False)
    settings = load_settings(_env_file=None)
    assert settings.metrics_port is None
    assert settings.metrics_host == "127.0.0.1"


def test_the_metrics_port_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METRICS_PORT", "9464")
    monkeypatch.setenv("METRICS_HOST", "10.0.0.5")
    settings = load_settings(_env_file=None)
    assert (settings.metrics_port, settings.metrics_host) == (9464, "10.0.0.5")


def test_metrics_never_share_the_public_port() -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings(_env_file=None, port=3000, metrics_port=3000)
    assert "METRICS_PORT (3000) must differ from PORT" in str(raised.value)


@pytest.mark.parametrize("value", ["0", "70000", "nine"])
def test_a_bad_metrics_port_names_its_variable(value: str) -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings(_env_file=None, metrics_port=value)
    assert "METRICS_PORT" in str(raised.value)
