"""The bounds the contract declares on numbers and texts that come from settings or from
other libraries hold: settings past int32 stop the server, a long `info` is cut."""

from __future__ import annotations

import pytest

from im_core.config import MAX_SHOWN_NUMBER, Settings, SettingsError
from im_core.errors import MAX_INFO, ApiError, Error


@pytest.mark.parametrize(
    "variable, value",
    [
        ("IM_CODE_TTL", str(MAX_SHOWN_NUMBER + 1)),
        ("IM_MEDIA_URL_TTL", "-1"),
        ("IM_RETRY_AFTER", "0"),
        ("IM_LIMIT_MESSAGE_PER_ACCOUNT", f"{MAX_SHOWN_NUMBER + 1}/60"),
        ("IM_LIMIT_SEARCH_PER_ACCOUNT", f"30/{MAX_SHOWN_NUMBER + 1}"),
    ],
)
def test_a_setting_past_the_contracts_int32_refuses_to_start_naming_it(variable, value):
    settings = Settings.from_env({variable: value})
    with pytest.raises(SettingsError, match=variable):
        settings.check()


def test_settings_at_the_bound_start():
    Settings.from_env(
        {"IM_AVATAR_URL_TTL": str(MAX_SHOWN_NUMBER), "IM_LIMIT_CODE_GUESSES": "1/2147483647"}
    ).check()


def test_a_long_info_is_cut_to_the_contracts_bound():
    error = ApiError(Error.UNSUPPORTED_CONTENT_TYPE, "Unsupported Content-Type: " + "x" * 5000)
    assert len(error.info) == MAX_INFO
    assert error.info.endswith("...")
    assert ApiError(Error.NOT_FOUND).info == "Not found"
