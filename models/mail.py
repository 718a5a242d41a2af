"""Outgoing mail: composing the code mails and delivering them. Nothing here knows HTTP.

Where mail goes is decided by one setting, `IM_MAIL_URL`:

* empty (the default): each mail is written as an `.eml` file into the instance outbox and
  a log line names the file, so the embedded default works with no mail server;
* `smtp://[user[:password]@]host[:port]` (port 25 by default): plain SMTP;
* `smtp://...?starttls=true`: the same, upgraded with STARTTLS before any login;
* `smtps://[user[:password]@]host[:port]` (port 465 by default): SMTP over TLS.

User and password are percent-decoded. TLS checks the server's certificate against the
system's trust store, or against `IM_MAIL_CA_FILE` when set. Every network step waits at most
`IM_MAIL_TIMEOUT` seconds.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import html
import logging
import os
import secrets
import smtplib
import ssl
import threading
import time
from datetime import timezone
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from im_core import metrics
from im_core.config import Settings, now

logger = logging.getLogger(__name__)

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


class MailError(Exception):
    """The mail could not be handed to the mail server; `str()` says why, for the client."""


@dataclasses.dataclass(frozen=True)
class SmtpTarget:
    host: str
    port: int
    tls: bool  # TLS from the first byte (smtps)
    starttls: bool
    user: str | None
    password: str | None

    def __str__(self) -> str:  # for logs: never the password
        scheme = "smtps" if self.tls else "smtp"
        user = f"{self.user}@" if self.user else ""
        options = "?starttls=true" if self.starttls else ""
        return f"{scheme}://{user}{self.host}:{self.port}{options}"


def parse_mail_url(url: str) -> SmtpTarget:
    """The SMTP server a non-empty `IM_MAIL_URL` names; ValueError when it is not one."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps"):
        raise ValueError("IM_MAIL_URL must start with smtp:// or smtps://")
    if not parts.hostname:
        raise ValueError("IM_MAIL_URL names no host")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("IM_MAIL_URL has an invalid port") from None
    if parts.path not in ("", "/"):
        raise ValueError("IM_MAIL_URL must not have a path")
    options = parse_qs(parts.query, keep_blank_values=True)
    unknown = set(options) - {"starttls"}
    if unknown:
        raise ValueError(f"IM_MAIL_URL has unknown options: {', '.join(sorted(unknown))}")
    starttls_value = options.get("starttls", ["false"])[-1].strip().lower()
    if starttls_value not in _TRUE + _FALSE:
        raise ValueError("IM_MAIL_URL option starttls must be true or false")
    tls = parts.scheme == "smtps"
    starttls = starttls_value in _TRUE
    if tls and starttls:
        raise ValueError("IM_MAIL_URL: smtps:// is TLS already; starttls is for smtp://")
    return SmtpTarget(
        host=parts.hostname,
        port=port or (465 if tls else 25),
        tls=tls,
        starttls=starttls,
        user=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


# What each purpose of a code lets its holder do, in English and in Chinese.
_PURPOSES = {
    "register": ("create your account", "注册账号"),
    "login": ("sign in", "登录"),
    "change_email": ("make this address your account's email", "将此地址设为您账号的邮箱"),
}


def _lifetime(seconds: int) -> tuple[str, str]:
    if seconds % 60 == 0:
        minutes = seconds // 60
        return (f"{minutes} minute{'s' if minutes != 1 else ''}", f"{minutes} 分钟")
    return (f"{seconds} second{'s' if seconds != 1 else ''}", f"{seconds} 秒")


def code_message(settings: Settings, to: str, purpose: str, code: str) -> EmailMessage:
    """The mail carrying a code: plain text and HTML alternatives, English then Chinese."""
    action_en, action_zh = _PURPOSES[purpose]
    lasts_en, lasts_zh = _lifetime(settings.code_ttl)
    text = (
        f"Your verification code to {action_en}:\n\n"
        f"    {code}\n\n"
        f"It is valid for {lasts_en} and works once. If you did not ask for it, "
        "ignore this mail: nothing changes without the code.\n\n"
        "----\n\n"
        f"您用于{action_zh}的验证码：\n\n"
        f"    {code}\n\n"
        f"{lasts_zh}内有效，仅可使用一次。如果这不是您本人的操作，请忽略本邮件："
        "没有验证码，您的账号不会有任何变化。\n"
    )
    code_html = html.escape(code)
    markup = (
        "<!DOCTYPE html>\n"
        '<html><body style="font-family: sans-serif">\n'
        '<div lang="en">\n'
        f"<p>Your verification code to {html.escape(action_en)}:</p>\n"
        f'<p style="font-size: 2em; letter-spacing: 0.2em"><strong>{code_html}</strong></p>\n'
        f"<p>It is valid for {html.escape(lasts_en)} and works once. If you did not ask for "
        "it, ignore this mail: nothing changes without the code.</p>\n"
        "</div>\n<hr>\n"
        '<div lang="zh-CN">\n'
        f"<p>您用于{html.escape(action_zh)}的验证码：</p>\n"
        f'<p style="font-size: 2em; letter-spacing: 0.2em"><strong>{code_html}</strong></p>\n'
        f"<p>{html.escape(lasts_zh)}内有效，仅可使用一次。如果这不是您本人的操作，请忽略本邮件："
        "没有验证码，您的账号不会有任何变化。</p>\n"
        "</div>\n"
        "</body></html>\n"
    )
    message = EmailMessage()
    message["Subject"] = f"Your code to {action_en} / 您的{action_zh}验证码"
    message["From"] = settings.mail_from
    message["To"] = to
    message["Date"] = format_datetime(now().replace(tzinfo=timezone.utc))
    message["Message-ID"] = make_msgid(domain=_sender_domain(settings.mail_from))
    # Quoted-printable keeps the mail 7-bit, for servers without 8BITMIME, and the English
    # text and the code readable in the raw file.
    message.set_content(text, cte="quoted-printable")
    message.add_alternative(markup, subtype="html", cte="quoted-printable")
    return message


def _sender_domain(mail_from: str) -> str:
    # make_msgid would otherwise ask the resolver for this machine's name on every mail.
    address = mail_from.rsplit("<", 1)[-1].rstrip(">").strip()
    return address.rpartition("@")[2] or "localhost"


def deliver(settings: Settings, message: EmailMessage) -> None:
    """Send `message` as `settings.mail_url` says (see the module's docstring).

    Raises MailError when the mail server refuses the mail, does not answer within
    `settings.mail_timeout`, or the URL is not valid; the reason is logged. Each attempt is
    timed in the metrics (`im_core.metrics.mail_sent`), by transport.
    """
    started, failed = time.perf_counter(), True
    try:
        _deliver(settings, message)
        failed = False
    finally:
        transport = "smtp" if settings.mail_url else "outbox"
        metrics.mail_sent(transport, time.perf_counter() - started, failed)


def _deliver(settings: Settings, message: EmailMessage) -> None:
    if not settings.mail_url:
        _write_to_outbox(settings.outbox_dir, message)
        return
    try:
        target = parse_mail_url(settings.mail_url)
    except ValueError as error:
        logger.error("Mail not sent: %s", error)
        raise MailError("Mail delivery is not configured correctly") from None
    try:
        _send_smtp(target, message, settings)
    except smtplib.SMTPResponseException as error:
        logger.warning(
            "Mail server %s refused the mail: %s %r", target, error.smtp_code, error.smtp_error
        )
        raise MailError("The mail server refused the mail") from None
    except (OSError, smtplib.SMTPServerDisconnected) as error:
        # Timeouts, refused connections, TLS failures, a server hanging up mid-way.
        logger.warning("Mail server %s did not answer: %s: %s", target, type(error).__name__, error)
        raise MailError("The mail server did not answer") from None
    except smtplib.SMTPException as error:
        # Every recipient refused, or STARTTLS or login not offered.
        logger.warning(
            "Mail server %s refused the mail: %s: %s", target, type(error).__name__, error
        )
        raise MailError("The mail server refused the mail") from None


# Mails sent after the request's answer (login codes), a few at a time per process.
_later = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="mail")
_pending: set[concurrent.futures.Future] = set()
_pending_lock = threading.Lock()


def deliver_later(settings: Settings, message: EmailMessage, *, send: bool, on_failure) -> None:
    """`deliver` the message in the background when `send` (else drop it there, after the
    same hand-off: see `models.codes.send`); `on_failure()` runs if delivery fails (the
    reason is logged)."""

    def deliver_or_drop() -> None:
        if not send:
            logger.debug("Mail to %s dropped: not to be sent", message["To"])
            return
        try:
            deliver(settings, message)
        except MailError:
            on_failure()

    with _pending_lock:
        future = _later.submit(deliver_or_drop)
        _pending.add(future)
    future.add_done_callback(_done)


def _done(future: concurrent.futures.Future) -> None:
    with _pending_lock:
        _pending.discard(future)
    if future.exception() is not None:  # on_failure itself failed: say so
        logger.error("Sending a mail in the background failed", exc_info=future.exception())


def wait_for_deliveries(timeout: float = 30.0) -> None:
    """Wait until the mails handed to `deliver_later` so far are sent or given up."""
    with _pending_lock:
        pending = list(_pending)
    concurrent.futures.wait(pending, timeout=timeout)


def _send_smtp(target: SmtpTarget, message: EmailMessage, settings: Settings) -> None:
    context = None
    if target.tls or target.starttls:
        context = ssl.create_default_context(cafile=settings.mail_ca_file or None)
    if target.tls:
        client = smtplib.SMTP_SSL(
            target.host, target.port, timeout=settings.mail_timeout, context=context
        )
    else:
        client = smtplib.SMTP(target.host, target.port, timeout=settings.mail_timeout)
    with client:
        if target.starttls:
            client.starttls(context=context)
        if target.user:
            client.login(target.user, target.password or "")
        client.send_message(message)


def _write_to_outbox(outbox: Path, message: EmailMessage) -> Path:
    """Write the mail as an `.eml` file, whole or not at all, and log where it went."""
    outbox.mkdir(parents=True, exist_ok=True)
    stamp = now().strftime("%Y%m%dT%H%M%S")
    path = outbox / f"{stamp}-{secrets.token_hex(4)}.eml"
    # Written aside and renamed, so a reader of the outbox never sees half a mail.
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(message.as_bytes())
    os.replace(temporary, path)
    logger.info("Mail to %s written to %s (no IM_MAIL_URL set)", message["To"], path)
    return path
