"""Mail delivery (models/mail.py): the outbox, real SMTP through aiosmtpd, and its failures.

`SmtpServer` and `read_code` are also used by test_email_codes.py.
"""

from __future__ import annotations

import dataclasses
import email
import logging
import re
import shutil
import socket
import ssl
import subprocess
from email import policy
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from models import mail


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def parse(raw: bytes) -> EmailMessage:
    return email.message_from_bytes(raw, policy=policy.default)


def read_code(message: EmailMessage) -> str:
    """The code a mail carries, read from its plain-text part as a person would."""
    text = message.get_body(preferencelist=("plain",)).get_content()
    return re.search(r"\b(\d{6})\b", text).group(1)


class Sink:
    """An aiosmtpd handler keeping what it accepts; `reply`, when set, refuses every mail."""

    def __init__(self):
        self.mails: list[EmailMessage] = []
        self.refused: list[EmailMessage] = []
        self.reply: str | None = None

    async def handle_DATA(self, server, session, envelope):
        message = parse(envelope.original_content or envelope.content)
        if self.reply:
            self.refused.append(message)
            return self.reply
        self.mails.append(message)
        return "250 Message accepted for delivery"


@dataclasses.dataclass
class SmtpServer:
    """A real SMTP server on loopback and the mails it received."""

    sink: Sink
    url: str

    @property
    def mails(self) -> list[EmailMessage]:
        mail.wait_for_deliveries()  # login codes are mailed after the answer
        return self.sink.mails

    def to(self, address: str) -> list[EmailMessage]:
        # Addresses are kept, and mailed to, lower-cased.
        return [m for m in self.mails if m["To"] == address.lower()]

    def code_for(self, address: str) -> str:
        """The code in the last mail to `address`."""
        received = self.to(address)
        assert received, f"no mail to {address}"
        return read_code(received[-1])


def start_smtp(scheme: str = "smtp", options: str = "", userinfo: str = "", **smtp_kwargs):
    sink = Sink()
    port = _free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port, **smtp_kwargs)
    controller.start()
    return controller, SmtpServer(sink, f"{scheme}://{userinfo}127.0.0.1:{port}{options}")


@pytest.fixture
def smtp_server():
    controller, server = start_smtp()
    yield server
    controller.stop()


@pytest.fixture
def mailing(app, settings):
    """Settings installed by the app (the mail's Date comes from the test clock)."""
    settings.mail_timeout = 2.0
    return settings


def send(settings, to="bob@example.com", purpose="login", code="042917"):
    mail.deliver(settings, mail.code_message(settings, to, purpose, code))


# --- the mail itself ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "purpose, english, chinese",
    [
        ("register", "create your account", "注册账号"),
        ("login", "sign in", "登录"),
        ("change_email", "make this address your account's email", "将此地址设为您账号的邮箱"),
    ],
)
def test_code_mail_is_plain_text_and_html_in_english_and_chinese(
    mailing, purpose, english, chinese
):
    message = parse(mail.code_message(mailing, "bob@example.com", purpose, "042917").as_bytes())
    assert message.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in message.iter_parts()] == [
        "text/plain",
        "text/html",
    ]
    assert message["To"] == "bob@example.com"
    assert message["From"] == mailing.mail_from
    assert english in message["Subject"] and chinese in message["Subject"]
    for part in message.iter_parts():
        content = part.get_content()
        assert "042917" in content
        assert english.replace("'", "&#x27;") in content or english in content
        assert chinese in content
        assert "10 minutes" in content and "10 分钟" in content
    assert read_code(message) == "042917"


def test_code_mail_is_7bit_for_any_mail_server(mailing):
    raw = mail.code_message(mailing, "bob@example.com", "login", "042917").as_bytes()
    assert raw.isascii()
    assert b"042917" in raw  # readable in the raw file, for whoever opens the outbox


def test_code_mail_says_how_long_a_code_of_another_lifetime_lasts(mailing):
    mailing.code_ttl = 90
    text = read_body(mail.code_message(mailing, "bob@example.com", "login", "042917"))
    assert "90 seconds" in text and "90 秒" in text


def read_body(message: EmailMessage) -> str:
    return parse(message.as_bytes()).get_body(preferencelist=("plain",)).get_content()


# --- the outbox ----------------------------------------------------------------------------


def test_without_mail_url_each_mail_is_an_eml_file_in_the_outbox(mailing, caplog):
    assert mailing.mail_url == ""
    with caplog.at_level(logging.INFO, logger="models.mail"):
        send(mailing, code="042917")
        send(mailing, code="555111")
    files = sorted(mailing.outbox_dir.glob("*.eml"))
    assert len(files) == 2
    assert sorted(read_code(parse(f.read_bytes())) for f in files) == ["042917", "555111"]
    assert not list(mailing.outbox_dir.glob(".*"))  # no temporary file left behind
    logged = [r.getMessage() for r in caplog.records if r.name == "models.mail"]
    for path in files:
        assert any(str(path) in line for line in logged)


# --- SMTP ----------------------------------------------------------------------------------


def test_smtp_delivers_the_mail(mailing, smtp_server):
    mailing.mail_url = smtp_server.url
    send(mailing, to="bob@example.com", code="042917")
    assert smtp_server.code_for("bob@example.com") == "042917"
    assert not list(mailing.outbox_dir.glob("*.eml"))


def test_smtp_logs_in_with_the_user_and_password_of_the_url(mailing):
    logins = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        assert isinstance(auth_data, LoginPassword)
        logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.password == b"p@ss:word", handled=False)

    controller, server = start_smtp(
        userinfo="mailer%40im:p%40ss%3Aword@",
        authenticator=authenticator,
        auth_require_tls=False,
        auth_required=True,
    )
    try:
        mailing.mail_url = server.url
        send(mailing)
        assert logins == [(b"mailer@im", b"p@ss:word")]
        assert len(server.mails) == 1

        mailing.mail_url = server.url.replace("p%40ss", "wrong")
        with pytest.raises(mail.MailError, match="refused"):
            send(mailing)
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1, made with the openssl command."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return cert, context


def test_smtp_with_starttls_upgrades_before_sending(mailing, certificate):
    cert, context = certificate
    controller, server = start_smtp(
        options="?starttls=true", tls_context=context, require_starttls=True
    )
    try:
        mailing.mail_url = server.url
        mailing.mail_ca_file = str(cert)
        send(mailing, code="042917")
        assert server.code_for("bob@example.com") == "042917"

        # The server's certificate is checked: unknown to the system's CAs, it is refused.
        mailing.mail_ca_file = ""
        with pytest.raises(mail.MailError):
            send(mailing)
        assert len(server.mails) == 1

        # Without STARTTLS this server takes no mail.
        mailing.mail_url = server.url.replace("?starttls=true", "")
        with pytest.raises(mail.MailError, match="refused"):
            send(mailing)
    finally:
        controller.stop()


def test_smtps_speaks_tls_from_the_start(mailing, certificate):
    cert, context = certificate
    controller, server = start_smtp(scheme="smtps", ssl_context=context)
    try:
        mailing.mail_url = server.url
        mailing.mail_ca_file = str(cert)
        send(mailing, code="042917")
        assert server.code_for("bob@example.com") == "042917"
    finally:
        controller.stop()


def test_smtp_server_answering_5xx_is_a_mail_error(mailing, smtp_server):
    mailing.mail_url = smtp_server.url
    smtp_server.sink.reply = "554 5.7.1 Message rejected"
    with pytest.raises(mail.MailError, match="The mail server refused the mail"):
        send(mailing)
    assert smtp_server.mails == []


def test_closed_smtp_port_is_a_mail_error(mailing):
    mailing.mail_url = f"smtp://127.0.0.1:{_free_port()}"
    with pytest.raises(mail.MailError, match="The mail server did not answer"):
        send(mailing)


def test_silent_smtp_server_is_a_mail_error_after_the_timeout(mailing):
    mailing.mail_timeout = 0.3
    with socket.socket() as listener:  # accepts connections, never says a word
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        mailing.mail_url = f"smtp://127.0.0.1:{listener.getsockname()[1]}"
        with pytest.raises(mail.MailError, match="The mail server did not answer"):
            send(mailing)


def test_mail_error_logs_never_show_the_password(mailing, caplog):
    mailing.mail_url = f"smtp://mailer:s3cret-pw@127.0.0.1:{_free_port()}"
    with caplog.at_level(logging.WARNING), pytest.raises(mail.MailError):
        send(mailing)
    assert caplog.records
    assert "s3cret-pw" not in caplog.text


# --- the URL -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, expected",
    [
        ("smtp://mail.example.com", ("mail.example.com", 25, False, False, None, None)),
        ("smtp://mail.example.com:2525", ("mail.example.com", 2525, False, False, None, None)),
        (
            "smtp://u%40x:p%2Fw@mail.example.com:587?starttls=true",
            ("mail.example.com", 587, False, True, "u@x", "p/w"),
        ),
        ("smtps://u:p@mail.example.com", ("mail.example.com", 465, True, False, "u", "p")),
        ("smtp://127.0.0.1:1025/?starttls=false", ("127.0.0.1", 1025, False, False, None, None)),
    ],
)
def test_mail_url_names_host_port_tls_and_login(url, expected):
    target = mail.parse_mail_url(url)
    assert dataclasses.astuple(target) == expected


@pytest.mark.parametrize(
    "url",
    [
        "http://mail.example.com",
        "smtp://",
        "smtp://mail.example.com:notaport",
        "smtp://mail.example.com/path",
        "smtp://mail.example.com?tls=true",
        "smtp://mail.example.com?starttls=maybe",
        "smtps://mail.example.com?starttls=true",
    ],
)
def test_invalid_mail_url_is_refused(url):
    with pytest.raises(ValueError):
        mail.parse_mail_url(url)


def test_invalid_mail_url_is_a_mail_error_when_sending(mailing):
    mailing.mail_url = "smtp:/oops"
    with pytest.raises(mail.MailError, match="not configured correctly"):
        send(mailing)
