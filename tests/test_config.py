"""Settings from IM_ variables, and the instance folder made on first start."""

from __future__ import annotations

import dataclasses
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from im_api.app import create_app
from im_core.config import Settings, SettingsError
from models import stores
from models.stores.local import LocalStore
from models.stores.s3 import S3Location, parse_url


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


def test_media_settings_come_from_im_variables():
    settings = Settings.from_env(
        {
            "IM_MEDIA_URL": "s3://media/im?endpoint=http://127.0.0.1:9000",
            "IM_MEDIA_TIMEOUT": "2.5",
            "IM_MEDIA_ATTEMPTS": "2",
        }
    )
    assert settings.media_url == "s3://media/im?endpoint=http://127.0.0.1:9000"
    assert (settings.media_timeout, settings.media_attempts) == (2.5, 2)
    defaults = Settings.from_env({})
    assert (defaults.media_url, defaults.media_timeout, defaults.media_attempts) == ("", 10.0, 3)


def test_the_default_media_store_is_the_instance_folder(tmp_path):
    settings = Settings.from_env({}, instance_dir=tmp_path / "i")
    store = stores.for_settings(settings)
    assert isinstance(store, LocalStore) and store.folder == settings.media_dir


@pytest.mark.parametrize(
    "url, location",
    [
        ("s3://media-bucket", S3Location("media-bucket", "", None, None, "auto")),
        (
            "s3://media-bucket/im/prod/?region=eu-west-3",
            S3Location("media-bucket", "im/prod", None, "eu-west-3", "auto"),
        ),
        (
            "s3://media.example/im?endpoint=http%3A%2F%2F127.0.0.1%3A9000&addressing=path",
            S3Location("media.example", "im", "http://127.0.0.1:9000", None, "path"),
        ),
        (
            "s3://m3d?endpoint=https://storage.example:8443&region=auto",
            S3Location("m3d", "", "https://storage.example:8443", "auto", "auto"),
        ),
    ],
)
def test_an_s3_media_url_names_bucket_prefix_endpoint_and_region(url, location):
    assert parse_url(url) == location


@pytest.mark.parametrize(
    "url",
    [
        "ftp://media/im",
        "s3://",
        "s3:///im",
        "s3://Media_Bucket",
        "s3://media-bucket?colour=blue",
        "s3://media-bucket?endpoint=ftp://127.0.0.1",
        "s3://media-bucket?addressing=sideways",
        "s3://user:secret@media-bucket",
        "s3://media-bucket/a/../b",
    ],
)
def test_a_wrong_media_url_is_refused_naming_the_setting(url, tmp_path):
    settings = Settings.from_env({}, instance_dir=tmp_path / "i", media_url=url)
    with pytest.raises(ValueError, match="IM_MEDIA_URL"):
        stores.for_settings(settings)


def test_serve_refuses_a_wrong_media_url_before_it_listens(tmp_path):
    environ = {**os.environ, "IM_INSTANCE_DIR": str(tmp_path / "i"), "IM_MEDIA_URL": "ftp://x"}
    environ.pop("IM_DATABASE_URL", None)
    finished = subprocess.run(
        [sys.executable, "-m", "im_api.cli", "serve", "--port", "1"],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert finished.returncode == 2 and "IM_MEDIA_URL" in finished.stderr


@pytest.mark.parametrize(
    "keys",
    ["x", "k" * 31, "k" * 40 + ",short", "密" * 10],  # the last: 10 characters, 30 bytes
    ids=["one-character", "31-bytes", "second-key-short", "30-bytes-of-utf8"],
)
def test_a_secret_key_shorter_than_32_bytes_refuses_to_start(tmp_path, database_url, keys):
    settings = Settings.from_env(
        {"IM_SECRET_KEYS": keys}, instance_dir=tmp_path / "i", database_url=database_url
    )
    with pytest.raises(ValueError) as refused:
        create_app(settings)
    message = str(refused.value)
    assert "IM_SECRET_KEYS" in message and "32 bytes" in message
    assert "short" not in message and "kkk" not in message  # the key itself is not shown


@pytest.mark.parametrize("keys", ["k" * 32, "密" * 11 + ",", "n" * 43 + "," + "o" * 43])
def test_secret_keys_of_32_bytes_or_more_start(tmp_path, database_url, keys):
    settings = Settings.from_env(
        {"IM_SECRET_KEYS": keys}, instance_dir=tmp_path / "i", database_url=database_url
    )
    create_app(settings)


def test_im_api_serve_exits_2_with_a_short_secret_key(tmp_path):
    env = {**os.environ, "IM_INSTANCE_DIR": str(tmp_path / "i"), "IM_SECRET_KEYS": "tiny"}
    env.pop("IM_DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "im_api.cli", "serve", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2, done.stderr
    assert "IM_SECRET_KEYS" in done.stderr and "32 bytes" in done.stderr
    assert "tiny" not in done.stderr


def test_every_setting_has_a_row_in_the_readme_configuration_table():
    """Each `Settings` field is an `IM_` variable the README's Configuration table lists."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    table = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = {line.split("|")[1].strip(" `") for line in table.splitlines() if line.startswith("| `")}
    missing = [
        f"IM_{field.name.upper()}"
        for field in dataclasses.fields(Settings)
        if field.name != "clock" and f"IM_{field.name.upper()}" not in rows
    ]
    assert missing == []


def test_the_group_member_cap_comes_from_im_max_group_members():
    assert Settings.from_env({}).max_group_members == 500
    assert Settings.from_env({"IM_MAX_GROUP_MEMBERS": "50"}).max_group_members == 50


@pytest.mark.parametrize("value", ["-1", "0", "1", "501"])
def test_a_group_member_cap_outside_2_to_500_refuses_to_start(value):
    """A direct chat has 2 members; the contract promises at most 500 (`maxItems`)."""
    settings = Settings.from_env({"IM_MAX_GROUP_MEMBERS": value})
    with pytest.raises(SettingsError) as refused:
        settings.check()
    assert "IM_MAX_GROUP_MEMBERS" in str(refused.value) and value in str(refused.value)


def test_the_contract_s_member_lists_are_bounded_by_the_group_member_cap():
    """`GroupDetail.members` and `ReceiptsResponse.members` declare as `maxItems` the most
    members a group may have (IM_MAX_GROUP_MEMBERS's default, also its highest value)."""
    spec = yaml.safe_load(
        (Path(__file__).resolve().parent.parent / "openapi/openapi.yaml").read_text()
    )
    schemas = spec["components"]["schemas"]
    cap = Settings().max_group_members
    assert schemas["GroupDetail"]["properties"]["members"]["maxItems"] == cap
    assert schemas["ReceiptsResponse"]["properties"]["members"]["maxItems"] == cap
    assert Settings().read_receipts_max_members <= cap
