"""Settings from defaults, hindsight.toml and the environment, with clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from hindsight.config import Settings
from hindsight.errors import ConfigError


def test_defaults_put_sqlite_under_dot_hindsight() -> None:
    s = Settings.load()
    assert s.home == Path(".hindsight")
    assert s.store_url == "sqlite:///.hindsight/hindsight.db"
    assert (s.project, s.heartbeat_s, s.stale_after_s) == ("default", 15.0, 120.0)
    assert s.mlflow_tracking_uri is None


def test_toml_then_environment_then_overrides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "hindsight.toml").write_text(
        '[hindsight]\nproject = "from-toml"\nhome = "state"\nstale_after_s = 300\n'
    )
    s = Settings.load()
    assert (s.project, s.home, s.stale_after_s) == ("from-toml", Path("state"), 300.0)
    assert s.store_url == "sqlite:///state/hindsight.db"
    monkeypatch.setenv("HINDSIGHT_PROJECT", "from-env")
    monkeypatch.setenv("HINDSIGHT_STORE", "postgresql+psycopg://u@h/db")
    s = Settings.load()
    assert (s.project, s.store_url) == ("from-env", "postgresql+psycopg://u@h/db")
    assert Settings.load(project="explicit").project == "explicit"


def test_config_file_named_by_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "elsewhere.toml"
    path.write_text('heartbeat_s = 5\nstale_after_s = 30\n')
    monkeypatch.setenv("HINDSIGHT_CONFIG", str(path))
    assert Settings.load().heartbeat_s == 5.0
    monkeypatch.setenv("HINDSIGHT_CONFIG", str(tmp_path / "missing.toml"))
    with pytest.raises(ConfigError, match="not a file"):
        Settings.load()


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[hindsight\n", "not valid TOML"),
        ("[hindsight]\nprojekt = 'x'\n", r"Unknown key\(s\) \['projekt'\]"),
        ("[hindsight]\nheartbeat_s = 'often'\n", "heartbeat_s must be a number"),
        ("[hindsight]\nheartbeat_s = 0\n", "heartbeat_s must be a positive"),
        ("[hindsight]\nheartbeat_s = 60\nstale_after_s = 30\n", "must be larger than heartbeat_s"),
        ("[hindsight]\nproject = ''\n", "project must be a non-empty"),
    ],
)
def test_bad_settings_name_what_is_wrong(tmp_path: Path, toml: str, message: str) -> None:
    (tmp_path / "hindsight.toml").write_text(toml)
    with pytest.raises(ConfigError, match=message):
        Settings.load()


def test_bad_environment_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HINDSIGHT_STALE_AFTER", "two minutes")
    with pytest.raises(ConfigError, match="stale_after_s must be a number"):
        Settings.load()
