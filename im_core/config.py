"""Settings, read from `IM_` environment variables; every one is documented in the README."""

from __future__ import annotations

import dataclasses
import os
import secrets
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

MB = 1024 * 1024
# Signing keys shorter than this are guessable offline from one token (HMAC-SHA1 in
# itsdangerous: a key should have at least the hash's strength).
MIN_SECRET_KEY_BYTES = 32


# IM_DIRECT_CHATS: between contacts only (the default), or between any two users.
DIRECT_CHATS = ("contacts", "anyone")
# IM_MAX_GROUP_MEMBERS' default and highest value: the contract lists a group's members with
# this `maxItems`, so a server allowing more would answer outside its own contract. At least a
# direct chat's two.
MAX_GROUP_MEMBERS = 500

# Settings that clients see as numbers (`expires_in`, `Retry-After`, `max-age`, the RateLimit
# fields): the contract bounds them as int32, so a server is not started past it (68 years).
MAX_SHOWN_NUMBER = 2**31 - 1
SHOWN_NUMBERS = (
    "token_ttl",
    "login_max_failures",
    "login_failure_window",
    "code_ttl",
    "code_resend_after",
    "media_url_ttl",
    "avatar_url_ttl",
    "recall_window",
    "retry_after",
    "login_max_account_failures",
    "login_account_failure_window",
)
# The contract bounds the URLs it gives (`MediaUrl`, `ws_url`) by their parts, this one too.
MAX_PUBLIC_BASE_URL = 200


class SettingsError(ValueError):
    """A setting the server cannot start with; the message names the variable."""


def utc_now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


@dataclasses.dataclass
class Settings:
    instance_dir: Path = Path("instance")
    database_url: str = ""  # empty: the SQLite file in the instance folder
    mail_url: str = ""  # empty: .eml files in the instance outbox
    mail_from: str = "IM <no-reply@im.localhost>"
    mail_timeout: float = 5.0  # seconds each step with the mail server may take
    mail_ca_file: str = ""  # empty: the system's CAs verify the mail server's certificate
    secret_keys: list[str] = dataclasses.field(default_factory=list)  # newest first
    bcrypt_rounds: int = 12
    token_ttl: int = 7 * 24 * 3600
    login_max_failures: int = 10
    login_failure_window: int = 15 * 60
    code_ttl: int = 10 * 60
    code_resend_after: int = 60
    code_max_tries: int = 5
    # Where media is kept: empty for the instance folder's media/, or an S3-compatible
    # bucket, s3://bucket[/prefix][?endpoint=URL&region=NAME&addressing=path|virtual].
    media_url: str = ""
    media_timeout: float = 10.0  # seconds to connect to the store, and for each read from it
    media_attempts: int = 3  # tries of each request to the store (botocore's standard retries)
    media_url_ttl: int = 24 * 3600
    avatar_url_ttl: int = 365 * 24 * 3600
    max_json_bytes: int = 64 * 1024
    max_image_bytes: int = 10 * MB
    max_image_pixels: int = 40_000_000
    # Verifying an image decodes its pixels once per frame of an animation, and a JPEG's
    # once per scan (a scan costs a tenth of a frame or less).
    max_image_frames: int = 1000
    max_frame_pixels: int = 100_000_000
    max_scan_pixels: int = 400_000_000
    max_expression_bytes: int = 1 * MB
    max_voice_bytes: int = 5 * MB
    max_file_bytes: int = 50 * MB
    max_avatar_bytes: int = 2 * MB
    # Peers whose X-Forwarded-For names the client (addresses, networks, or * for any).
    trusted_proxies: list[str] = dataclasses.field(default_factory=list)
    # Abuse limits, COUNT/SECONDS per key (models.throttle); empty: no limit.
    limit_register_per_address: str = "30/3600"
    limit_login_per_address: str = "100/900"
    limit_login_per_target: str = "30/900"
    limit_email_code_per_address: str = "20/3600"
    limit_email_code_per_mailbox: str = "10/3600"
    limit_password_per_account: str = "20/3600"
    limit_password_per_address: str = "60/3600"
    limit_upload_per_account: str = "120/600"
    limit_upload_per_address: str = "300/600"
    limit_message_per_account: str = "600/60"
    limit_message_per_address: str = "1200/60"
    limit_code_guesses: str = "10/3600"
    limit_search_per_account: str = "30/60"
    limit_search_per_address: str = "60/60"
    limit_contact_request_per_account: str = "30/3600"
    limit_contact_request_per_address: str = "60/3600"
    # Who may open a direct chat with whom: "contacts" (and not blocked), or "anyone" not
    # blocked.
    direct_chats: str = "contacts"
    # Groups up to this many members show who has read how far; larger ones only counts.
    read_receipts_max_members: int = 100
    # Members a group may have, 2 to MAX_GROUP_MEMBERS (the contract's `maxItems`).
    max_group_members: int = MAX_GROUP_MEMBERS
    # Seconds a sender may recall their message (a group's owner may at any time).
    recall_window: int = 120
    validate_responses: bool = False
    # Operating it: metrics, JSON log, request ids (README).
    metrics_port: int = 0  # GET /metrics on a listener of its own (im-api serve); 0: none
    metrics_host: str = "127.0.0.1"  # the address that listener takes
    metrics_path: str = ""  # or a path of the API's own port answering them; empty: none
    log_format: str = "text"  # or "json": one JSON object per line (im-api serve)
    ready_timeout: float = 2.0  # seconds the readiness check gives the media store
    # Origins (scheme://host[:port]) whose pages may call the API; empty: none, "*": any.
    cors_origins: list[str] = dataclasses.field(default_factory=list)
    # Where clients reach the server, http(s)://host[:port][/path]: media URLs and ws_url are
    # made absolute under it (ws:// or wss:// for the socket); empty: relative, as in the spec.
    public_base_url: str = ""
    db_pool_size: int = 10
    migrate_on_start: bool = True  # false: the server refuses a database behind the code
    # The serving front (im_api/front.py and the modules it dispatches to).
    connexion_speedups: bool = True  # im_api/speed.py; false: Connexion's own code throughout
    send_timeout: float = 30.0  # seconds a download may wait for its client to take a chunk
    max_uploads_per_account: int = 3  # at once, on every worker of this instance folder
    min_free_disk_bytes: int = 1024 * MB  # below it (after the upload) uploads answer 507
    request_threads: int = 10  # requests on request threads at once (at most 10)
    queue_timeout: float = 10.0  # seconds a request waits for a thread, then 503
    retry_after: int = 5  # the Retry-After of a 503 (no thread) and of a 429 (uploads at once)
    # The realtime socket (im_api/realtime): what one connection may cost the server.
    ws_auth_timeout: float = 5.0  # seconds to send the `auth` frame without the header
    ws_max_frame: int = 64 * 1024  # largest client frame (bytes); larger closes with 1009
    ws_frame_rate: float = 20.0  # client frames per second, on average ...
    ws_frame_burst: int = 40  # ... and at once; more closes with 4429
    ws_queue: int = 1000  # frames waiting for a client; one more closes it with 4503
    ws_ping_interval: float = 20.0  # seconds between uvicorn's pings that find dead peers
    ws_ping_timeout: float = 20.0  # seconds a peer has to answer one
    # Facing the internet: connections, headers, sockets, replays, stalls (README).
    max_header_bytes: int = 32 * 1024  # a request's line and headers; past it 431, closed
    header_timeout: float = 30.0  # seconds a request has to send them; then 408, closed
    max_connections_per_address: int = 256  # open at once, per worker (0: no limit)
    ws_max_sockets_per_user: int = 20  # at once, on every worker of the instance folder
    ws_max_sockets_per_address: int = 128  # ... and per client address (0: no limit)
    limit_replay_per_user: str = "20000/3600"  # messages `sync` replays, per user
    media_request_threads: int = 4  # of the request threads, the most media requests hold
    login_max_account_failures: int = 20  # per account, then only known addresses pass
    login_account_failure_window: int = 3600  # ... within this many seconds
    media_orphan_grace: int = 3600  # seconds before a stored object no row names is removed
    reconcile_media_on_start: bool = True  # `im-api serve` removes those as it starts
    clock: Callable[[], datetime] = utc_now

    @property
    def media_dir(self) -> Path:
        return self.instance_dir / "media"

    @property
    def outbox_dir(self) -> Path:
        return self.instance_dir / "outbox"

    @property
    def sqlite_path(self) -> Path:
        return self.instance_dir / "im.sqlite"

    @property
    def sqlite_file(self) -> Path | None:
        """The SQLite file in use, absolute (a relative `sqlite:///PATH` is taken from the
        working folder); None for PostgreSQL. Raises ValueError for any other URL."""
        url = self.database_url
        if url.startswith(("postgresql://", "postgres://")):
            return None
        if url and not url.startswith("sqlite:///"):
            raise ValueError("IM_DATABASE_URL must be empty, sqlite:///PATH or postgresql://...")
        return Path(url[len("sqlite:///") :]).resolve() if url else self.sqlite_path.resolve()

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides) -> Settings:
        """Defaults, then `IM_*` variables, then keyword overrides (for tests)."""
        environ = os.environ if environ is None else environ
        values: dict = {}
        for field in dataclasses.fields(cls):
            raw = environ.get("IM_" + field.name.upper())
            if raw is None or field.name == "clock":
                continue
            values[field.name] = _parse(field.name, field.type, raw)
        values.update(overrides)
        settings = cls(**values)
        settings.instance_dir = Path(settings.instance_dir).resolve()
        return settings

    @property
    def metrics_on(self) -> bool:
        """Whether metrics are kept: a port or a path serves them."""
        return bool(self.metrics_port or self.metrics_path)

    def check(self) -> None:
        """Raise SettingsError for a setting the server must not start with."""
        _check_operating(self)
        _check_public_base_url(self.public_base_url)
        for name in SHOWN_NUMBERS:
            value = getattr(self, name)
            if not (1 if name == "retry_after" else 0) <= value <= MAX_SHOWN_NUMBER:
                raise SettingsError(
                    f"IM_{name.upper()}: at most {MAX_SHOWN_NUMBER} (and not negative), got {value}"
                )
        for field in dataclasses.fields(self):
            if field.name.startswith("limit_"):
                parse_limit(field.name, getattr(self, field.name))
        if self.direct_chats not in DIRECT_CHATS:
            raise SettingsError(
                f"IM_DIRECT_CHATS: one of {', '.join(DIRECT_CHATS)}; got {self.direct_chats[:40]!r}"
            )
        if not 2 <= self.max_group_members <= MAX_GROUP_MEMBERS:
            raise SettingsError(
                f"IM_MAX_GROUP_MEMBERS: 2 to {MAX_GROUP_MEMBERS} (the contract's bound); "
                f"got {self.max_group_members}"
            )
        for key in self.secret_keys:
            size = len(key.encode("utf-8"))
            if size < MIN_SECRET_KEY_BYTES:
                raise SettingsError(
                    f"IM_SECRET_KEYS: every key must be at least {MIN_SECRET_KEY_BYTES} bytes, "
                    f"one is {size}; make one with: "
                    "python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"
                )

    def prepare_instance(self) -> None:
        """Create the instance folders and, when no secret is configured, a kept one."""
        for folder in (self.instance_dir, self.media_dir, self.outbox_dir):
            folder.mkdir(parents=True, exist_ok=True)
        if not self.secret_keys:
            self.secret_keys = [_kept_secret(self.instance_dir / "secret_key")]


def parse_limit(field_name: str, value: str) -> tuple[int, int] | None:
    """A `limit_*` setting, `COUNT/SECONDS`, as a pair; None when empty (no limit).

    Raises SettingsError for anything else.
    """
    if not value.strip():
        return None
    count, slash, seconds = value.partition("/")
    if slash and count.strip().isdigit() and seconds.strip().isdigit():
        pair = int(count), int(seconds)
        if 1 <= pair[0] <= MAX_SHOWN_NUMBER and 1 <= pair[1] <= MAX_SHOWN_NUMBER:
            return pair
    raise SettingsError(
        f"IM_{field_name.upper()}: expected COUNT/SECONDS such as 30/3600 (at most 30 in "
        f"each hour; each at most {MAX_SHOWN_NUMBER}), or nothing for no limit; got {value[:40]!r}"
    )


def _check_operating(settings: Settings) -> None:
    path = settings.metrics_path
    if path and (not path.startswith("/") or path == "/api" or path.startswith("/api/")):
        # Under /api it would be an operation of the public API, which the spec describes.
        raise SettingsError(
            f"IM_METRICS_PATH must be a path starting with / outside /api, got {path[:40]!r}"
        )
    if not 0 <= settings.metrics_port <= 65535:
        raise SettingsError(
            f"IM_METRICS_PORT must be a port (0: none), got {settings.metrics_port}"
        )
    if settings.log_format not in ("text", "json"):
        raise SettingsError(f"IM_LOG_FORMAT must be text or json, got {settings.log_format[:20]!r}")


def _check_public_base_url(value: str) -> None:
    if not value:
        return
    if len(value) > MAX_PUBLIC_BASE_URL:
        raise SettingsError(
            f"IM_PUBLIC_BASE_URL: at most {MAX_PUBLIC_BASE_URL} characters, got {len(value)}"
        )
    parts = urlsplit(value)
    try:
        parts.port  # noqa: B018 (a port out of range or not a number raises here)
        fits = (
            parts.scheme in ("http", "https")
            and bool(parts.hostname)
            and parts.username is None
            and "?" not in value
            and "#" not in value
            and all(ch.isprintable() and not ch.isspace() for ch in value)
        )
    except ValueError:
        fits = False
    if not fits:
        raise SettingsError(
            "IM_PUBLIC_BASE_URL: expected http(s)://host[:port][/path] with no user, query or "
            f"fragment, such as https://chat.example.com; got {value[:80]!r}"
        )


def _parse(name: str, type_name: str, raw: str):
    if type_name == "bool":
        return raw.strip().lower() in ("1", "true", "yes", "on")
    if type_name == "int":
        return int(raw)
    if type_name == "float":
        return float(raw)
    if type_name == "list[str]":
        return [part.strip() for part in raw.split(",") if part.strip()]
    if type_name == "Path":
        return Path(raw)
    return raw


def _kept_secret(path: Path) -> str:
    """The instance's generated secret, made once with owner-only permissions."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    secret = secrets.token_urlsafe(48)
    # Written aside then linked into place, so a worker racing us never reads a half file.
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret)
    try:
        os.link(temporary, path)
    except FileExistsError:  # another worker won the race: use its secret
        secret = path.read_text().strip()
    finally:
        temporary.unlink()
    return secret


_current: Settings | None = None


def install(settings: Settings) -> None:
    """Make `settings` the process's settings (the app factory calls this)."""
    global _current
    _current = settings


def current() -> Settings:
    """The settings of the app this process serves."""
    if _current is None:
        raise RuntimeError("No settings installed: build the app with create_app() first")
    return _current


def now() -> datetime:
    """The configured clock's time (tests move it instead of sleeping)."""
    return current().clock()
