"""E-mail over STARTTLS with a login, to a real SMTP server that refuses plain text."""

from __future__ import annotations

import email
import email.policy

import pytest

from kopilka.notify.channels import Outgoing, Retry
from kopilka.notify.channels.email import Smtp
from tests.notify.conftest import SmtpServer, TlsFiles


def msg() -> Outgoing:
    return Outgoing("email", "anna@example.org", "Начислено 25 баллов.", "kp-7-email", "Баллы")


async def test_starttls_with_a_login_delivers_and_the_key_is_the_message_id(
    starttls_server: SmtpServer, tls_files: TlsFiles
) -> None:
    smtp = Smtp(
        "127.0.0.1",
        starttls_server.port,
        "loyalty@shop.example",
        security="starttls",
        user=starttls_server.user,
        password=starttls_server.password,
        ca_file=tls_files.cert,
        domain="shop.example",
    )

    ref = await smtp.send(msg())

    [got] = starttls_server.mailbox.messages
    parsed = email.message_from_bytes(got.content, policy=email.policy.default)  # type: ignore[arg-type]
    assert ref == "<kp-7-email@shop.example>" == parsed["Message-ID"]
    assert parsed.get_content().strip() == "Начислено 25 баллов."
    assert str(parsed["Subject"]) == "Баллы"


async def test_an_untrusted_certificate_is_not_accepted(starttls_server: SmtpServer) -> None:
    smtp = Smtp("127.0.0.1", starttls_server.port, "loyalty@shop.example", security="starttls")

    with pytest.raises(Retry, match="CERTIFICATE_VERIFY_FAILED"):
        await smtp.send(msg())
    assert starttls_server.mailbox.messages == []


async def test_plain_text_to_a_server_that_requires_tls_is_refused(
    starttls_server: SmtpServer,
) -> None:
    smtp = Smtp("127.0.0.1", starttls_server.port, "loyalty@shop.example", security="none")

    with pytest.raises(Retry, match="530"):
        await smtp.send(msg())
