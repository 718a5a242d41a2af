"""The speed module and its switch: `IM_CONNEXION_SPEEDUPS` (on by default).

What the speed module changes must not be visible to a client but in speed; the conformance
suite runs both ways (scripts/test). The one visible trace is how the JSON is laid out:
compact with the speed module, Connexion's pretty-printing without it.
"""

from __future__ import annotations

from im_api.app import create_app
from im_core.config import Settings

HEALTHY = {"code": 0, "database": "ok", "info": "Succeed"}


def test_the_setting_is_read_from_the_environment():
    assert Settings.from_env({}).connexion_speedups is True
    assert Settings.from_env({"IM_CONNEXION_SPEEDUPS": "false"}).connexion_speedups is False


def test_with_the_speed_module_json_is_compact(client):
    assert client.get("/api/health").text == '{"code":0,"database":"ok","info":"Succeed"}\n'


def test_without_it_connexion_answers_as_by_default(settings):
    settings.connexion_speedups = False
    with create_app(settings).test_client() as plain:
        health = plain.get("/api/health")
        token = plain.post(
            "/api/user/register", json={"name": "plain", "password": "correct horse"}
        ).json()["token"]
        renamed = plain.post(
            "/api/user/change_name",
            json={"new_name": "plainer"},
            headers={"Authorization": f"Bearer {token}"},
        )
        me = plain.get("/api/user/me", headers={"Authorization": f"Bearer {token}"})
    assert health.json() == HEALTHY
    assert health.text.startswith('{\n  "code": 0,')  # Connexion's indent=2
    assert renamed.json() == {"code": 0, "info": "Succeed"}
    assert me.json()["user"]["name"] == "plainer"
