"""Settings from IM_ variables, and the instance folder made on first start."""

from __future__ import annotations

import stat
from pathlib import Path

from im_api.config import Settings


def test_settings_come_from_im_variables():
    settings = Settings.from_env(
        {
            "IM_INSTANCE_DIR": "/tmp/somewhere",
            "IM_BCRYPT_ROUNDS": "5",
            "IM_SECRET_KEYS": "newest, older",
            "IM_VALIDATE_RESPONSES": "true",
            "IM_MAIL_URL": "smtp://127.0.0.1:2525",
        }
    )
    assert settings.instance_dir == Path("/tmp/somewhere")
    assert settings.bcrypt_rounds == 5
    assert settings.secret_keys == ["newest", "older"]
    assert settings.validate_responses is True
    assert settings.mail_url == "smtp://127.0.0.1:2525"


def test_defaults_need_no_variable():
    settings = Settings.from_env({})
    assert settings.instance_dir == Path("instance").resolve()
    assert settings.database_url == ""
    assert settings.bcrypt_rounds == 12
    assert settings.token_ttl == 7 * 24 * 3600


def test_first_start_makes_the_instance_folder_and_keeps_a_generated_secret(tmp_path):
    settings = Settings.from_env({}, instance_dir=tmp_path / "fresh")
    settings.prepare_instance()
    assert settings.media_dir.is_dir() and settings.outbox_dir.is_dir()
    secret_file = settings.instance_dir / "secret_key"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert settings.secret_keys == [secret_file.read_text()]
    assert len(settings.secret_keys[0]) >= 40

    again = Settings.from_env({}, instance_dir=tmp_path / "fresh")
    again.prepare_instance()
    assert again.secret_keys == settings.secret_keys


def test_a_configured_secret_is_used_and_none_is_written(tmp_path):
    settings = Settings.from_env({"IM_SECRET_KEYS": "configured"}, instance_dir=tmp_path / "i")
    settings.prepare_instance()
    assert settings.secret_keys == ["configured"]
    assert not (settings.instance_dir / "secret_key").exists()


def test_migrations_run_on_start_unless_turned_off():
    assert Settings.from_env({}).migrate_on_start is True
    assert Settings.from_env({"IM_MIGRATE_ON_START": "false"}).migrate_on_start is False


def test_the_sqlite_file_is_absolute_and_relative_paths_start_at_the_working_folder(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    relative = Settings.from_env({"IM_DATABASE_URL": "sqlite:///data/im.sqlite"})
    assert relative.sqlite_file == tmp_path / "data" / "im.sqlite"
    default = Settings.from_env({"IM_INSTANCE_DIR": "inst"})
    assert default.sqlite_file == tmp_path / "inst" / "im.sqlite"
    postgres = Settings.from_env({"IM_DATABASE_URL": "postgresql://im@db:5432/im"})
    assert postgres.sqlite_file is None
