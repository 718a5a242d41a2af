"""Message changes where the black-box suite cannot reach: the recall window by the server's
clock, and the media a recall releases, in the store itself (folder or S3), never while a
forwarded copy still shows it. conformance/test_changes.py checks the rest."""

from __future__ import annotations

from envelope import error_body
from media_samples import png
from pony.orm import db_session

from models.entities import Media


def member_group(client, auth):
    alice, bob = auth.register("alice"), auth.register("bob")
    owner = auth.header(alice["token"])
    group = client.post("/api/groups", json={"name": "g"}, headers=owner).json()["group"]["id"]
    client.post(f"/api/groups/{group}/members", json={"name": "bob"}, headers=owner)
    return group, owner, auth.header(bob["token"])


def test_a_sender_recalls_within_the_window_by_the_servers_clock(client, auth, clock):
    group, owner, bob = member_group(client, auth)
    for text in ("early", "late"):
        client.post(f"/api/groups/{group}/messages", json={"text": text}, headers=bob)
    clock.advance(seconds=119)
    assert client.delete(f"/api/groups/{group}/messages/1", headers=bob).status_code == 200
    clock.advance(seconds=2)
    late = client.delete(f"/api/groups/{group}/messages/2", headers=bob)
    assert (late.status_code, error_body(late)) == (
        403,
        {"code": 5007, "info": "Too late to recall: the window is 120 s"},
    )
    assert client.delete(f"/api/groups/{group}/messages/2", headers=owner).status_code == 200


def test_a_recalled_uploads_bytes_go_once_no_message_shows_them(client, auth, stored):
    group, owner, bob = member_group(client, auth)
    other = client.post("/api/groups", json={"name": "other"}, headers=owner).json()["group"]["id"]
    picture = png((8, 8), (1, 2, 3))
    for _ in range(2):
        sent = client.post(
            f"/api/groups/{group}/upload_image",
            files={"image": ("p.png", picture, "image/png")},
            headers=owner,
        )
        assert sent.status_code == 201, sent.text
    copied = client.post(
        f"/api/groups/{other}/forward", json={"from_group_id": group, "seqs": [1]}, headers=owner
    )
    assert copied.status_code == 201, copied.text
    assert len(stored.hashes()) == 1  # one file, three messages (two uploads, one copy)

    for seq in (1, 2):
        assert (
            client.delete(f"/api/groups/{group}/messages/{seq}", headers=owner).status_code == 200
        )
    assert len(stored.hashes()) == 1  # the copy still shows it
    with db_session:
        assert Media.select().count() == 1  # the second upload's row went, the first's stays

    assert client.delete(f"/api/groups/{other}/messages/1", headers=owner).status_code == 200
    assert stored.hashes() == []
    with db_session:
        assert Media.select().count() == 0
