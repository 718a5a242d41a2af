"""GET /api/health (liveness) and GET /api/health/ready (readiness)."""

from pony.orm import select

from im_api import readiness
from im_core.errors import ApiError, Error
from models.entities import User


def check_health():
    try:
        select(u.id for u in User).first()
    except Exception as error:  # any driver failure means the database is not reachable
        raise ApiError(Error.UNAVAILABLE, "The database did not answer") from error
    return {"code": 0, "info": "Succeed", "database": "ok"}


def check_ready():
    """Every part `im_api.readiness` checks; 503 naming the failing ones."""
    checks = readiness.current().check()
    failing = readiness.failing(checks)
    if failing:
        raise ApiError(Error.UNAVAILABLE, f"Not ready: {', '.join(failing)}")
    return {"code": 0, "info": "Succeed", **checks}
