"""E-mail through SMTP (stdlib ``smtplib`` in a thread): plain, STARTTLS or SSL, with or
without a login; a message may carry one attachment (a scheduled report's file).  The
delivery key becomes the ``Message-ID``, so a message sent twice after a crash is
recognisable as one by the receiving side."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, formatdate

from kopilka.notify.channels import Outgoing, Reject, Retry

SECURITY = ("none", "starttls", "ssl")
# Answers about this recipient or address that no retry will change.
RECIPIENT_REFUSED = frozenset({550, 551, 553})


@dataclass(frozen=True, slots=True)
class Smtp:
    host: str
    port: int
    sender: str
    sender_name: str = ""
    security: str = "starttls"  # none | starttls | ssl
    user: str | None = None
    password: str | None = None
    timeout_s: float = 15.0
    domain: str = "kopilka.local"  # right-hand side of Message-ID
    ca_file: str | None = None  # trust this CA too (a private mail server's certificate)

    def message(self, msg: Outgoing) -> EmailMessage:
        m = EmailMessage()
        m["From"] = formataddr((self.sender_name, self.sender)) if self.sender_name else self.sender
        m["To"] = msg.recipient
        m["Subject"] = msg.subject or ""
        m["Date"] = formatdate(localtime=False, usegmt=True)
        m["Message-ID"] = f"<{msg.key}@{self.domain}>"
        m.set_content(msg.body)
        if msg.attachment is not None:
            maintype, _, subtype = msg.attachment.content_type.partition("/")
            m.add_attachment(
                msg.attachment.data,
                maintype=maintype,
                subtype=subtype or "octet-stream",
                filename=msg.attachment.filename,
            )
        return m

    def _send(self, m: EmailMessage) -> None:
        context = ssl.create_default_context(cafile=self.ca_file)
        smtp: smtplib.SMTP
        if self.security == "ssl":
            smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout_s, context=context)
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout_s)
        with smtp:
            if self.security == "starttls":
                smtp.starttls(context=context)
            if self.user:
                smtp.login(self.user, self.password or "")
            smtp.send_message(m)

    async def send(self, msg: Outgoing) -> str | None:
        m = self.message(msg)
        try:
            await asyncio.to_thread(self._send, m)
        except smtplib.SMTPRecipientsRefused as exc:
            raise Reject(f"smtp: recipient refused: {exc.recipients}") from None
        except smtplib.SMTPResponseException as exc:
            text = f"smtp: {exc.smtp_code} {exc.smtp_error!r}"
            if exc.smtp_code in RECIPIENT_REFUSED:
                raise Reject(text) from None
            # 4xx, and 5xx about our side (530 TLS required, 535 login): fixable, retried
            raise Retry(text) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise Retry(f"smtp: {exc}") from None
        return str(m["Message-ID"])
