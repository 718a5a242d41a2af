"""GET /api/health."""

from pony.orm import select

from im_core.errors import ApiError, Error
from models.entities import User


def check_health():
    try:
        select(u.id for u in User).first()
    except Exception as error:  # any driver failure means the database is not reachable
        raise ApiError(Error.UNAVAILABLE, "The database did not answer") from error
    return {"code": 0, "info": "Succeed", "database": "ok"}
