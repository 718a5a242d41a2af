"""Uploads judged on their headers, before a byte of their body is read.

POST /api/groups/{group_id}/upload_* and /api/user/change_image stream their body to a spool
file (`im_api.uploads`, inside Connexion). Before that starts, the front checks here what the
headers already tell: the bearer token, its session, the group and membership (group
uploads), room on the disk, and the account's uploads under way. A refusal is answered at
once in the envelope and the connection closed, so its body is never read nor spooled:

* 401 MISSING_TOKEN / INVALID_TOKEN, as Connexion's bearer check would say, or when the
  session has ended;
* 404 GROUP_NOT_FOUND, 403 NOT_A_MEMBER, and in a direct chat the 403 of its rules
  (`models.direct`);
* 507 INSUFFICIENT_STORAGE when the upload (its declared length, or its kind's limit) would
  leave less than `IM_MIN_FREE_DISK_BYTES` free where the media lives;
* 429 TOO_MANY_UPLOADS past `IM_MAX_UPLOADS_PER_ACCOUNT` uploads at once (`upload_slots`).

The declared size is judged before, by the body limit (`im_api.limits`, 413). The database is
read on a thread of a small pool of the front's own (Pony's sessions belong to a thread),
never in the event loop and never on the request threads of the Flask bridge. Anything the
checks cannot judge (a `group_id` off the spec's schema, say) goes on to Connexion, which
refuses it before reading the body as well.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import shutil
from concurrent.futures import ThreadPoolExecutor

from pony.orm import db_session
from pony.orm.dbapiprovider import OperationalError as DatabaseUnavailable
from starlette.types import ASGIApp, Receive, Scope, Send

from im_api.envelope import send_error
from im_api.limits import content_length
from im_api.paths import route_path, upload_group, upload_kind
from im_api.upload_slots import UploadSlots
from im_core import metrics, security
from im_core.config import Settings
from im_core.errors import ApiError, Error, too_many_uploads
from models import direct, groups, sessions

logger = logging.getLogger(__name__)

# The contract's ids (components.schemas.Id): 1 to 2**53 - 1, written plainly. Others are
# left to Connexion's validation.
_ID = re.compile(r"[1-9][0-9]{0,15}")
_MAX_ID = 2**53 - 1


@functools.cache
def database_threads() -> ThreadPoolExecutor:
    """The front's threads for database reads: few, so they hold few connections."""
    return ThreadPoolExecutor(max_workers=4, thread_name_prefix="im-front-db")


class UploadAdmission:
    def __init__(self, api: ASGIApp, settings: Settings):
        self.api = api
        self.settings = settings
        self.slots = UploadSlots(
            settings.instance_dir / "upload-slots", settings.max_uploads_per_account
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            account = await self._account(scope)
            self._check_disk(scope)
            slot = self.slots.take(account)
            if slot is None:
                metrics.refused("uploads_at_once")
                raise too_many_uploads(self.slots.per_account, self.settings.retry_after)
        except ApiError as refusal:
            await send_error(send, refusal, close=True)
            return
        except Exception:
            logger.exception("Upload admission failed")
            await send_error(send, ApiError(Error.INTERNAL), close=True)
            return
        try:
            await self.api(scope, receive, send)
        finally:
            slot.release()

    async def _account(self, scope: Scope) -> int:
        """The id of the account uploading; raises the refusal of the token or the group."""
        token_info = security.token_info(security.bearer_token(scope["headers"]))
        if token_info is None:
            raise ApiError(Error.INVALID_TOKEN)
        group = upload_group(route_path(scope))
        group_id = int(group) if group and _ID.fullmatch(group) else None
        if group_id is not None and group_id > _MAX_ID:
            group_id = None
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(database_threads(), _member_account, token_info, group_id)

    def _check_disk(self, scope: Scope) -> None:
        path = route_path(scope)
        declared = content_length(scope)
        if not isinstance(declared, int):  # chunked: as large as the kind allows
            declared = getattr(self.settings, f"max_{upload_kind(path)}_bytes")
        free = shutil.disk_usage(self.settings.media_dir).free
        if free - declared < self.settings.min_free_disk_bytes:
            logger.warning("Upload refused: %d bytes free on the media disk", free)
            metrics.refused("free_disk")
            raise ApiError(Error.INSUFFICIENT_STORAGE)


def _member_account(token_info: dict, group_id: int | None) -> int:
    """On a database thread: the session's account, a member of the group when one is named.

    Raises INVALID_TOKEN, GROUP_NOT_FOUND, NOT_A_MEMBER, what `direct.check_may_post` raises,
    or UNAVAILABLE when the database does not answer.
    """
    try:
        with db_session:
            user = sessions.active(token_info).user
            if group_id is not None:
                direct.check_may_post(groups.of_member(group_id, user), user)
            return user.id
    except DatabaseUnavailable as error:
        logger.error("Database unavailable: %s", error)
        raise ApiError(Error.UNAVAILABLE, "The database did not answer") from None
