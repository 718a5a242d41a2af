"""The server log as one JSON object per line (`IM_LOG_FORMAT=json`), for a log stack to read.

Every line has `time` (UTC, ISO 8601), `level`, `logger` and `message`; a line logged while
a request is served adds its `request_id` and, once its session was read, `user_id`
(`im_core.request_info`); the access line adds `method`, `path` (never the query string:
a media URL's signature is a credential), `status`, `duration_ms` and `operation` (the
operationId). Nothing else of a request is logged, so no token, password or code.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

from im_core import request_info


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        info = request_info.current()
        if info is not None:
            entry["request_id"] = info.request_id
            if info.user_id is not None:
                entry["user_id"] = info.user_id
        access = getattr(record, "access", None)
        if access:
            entry.update((key, value) for key, value in access.items() if value is not None)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        # ASCII-only and escaped: one request stays one line whatever its path holds.
        return json.dumps(entry, default=str)
