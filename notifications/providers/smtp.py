"""E-mail through Django's e-mail backend (SMTP, configured by the EMAIL_* settings).

The subject is the template's first line when it reads "Subject: ...", otherwise
TIERFLOW_EMAIL_SUBJECT. The provider id is the Message-ID we set, which bounces and
replies quote. SMTP says itself whether to try again: 4xx replies are temporary, 5xx
permanent.
"""

import logging
import smtplib
from email.utils import make_msgid, parseaddr

from django.conf import settings
from django.core.mail import EmailMessage, get_connection

from . import OutgoingMessage, ProviderError
from .common import failure, subject_and_text

logger = logging.getLogger(__name__)

MAX_ID_LENGTH = 100  # Notification.provider_message_id


def message_id(notification_id: int) -> str:
    # Our own domain, not the host's name: Django would look that up in DNS.
    domain = parseaddr(settings.DEFAULT_FROM_EMAIL)[1].rpartition("@")[2] or "tierflow"
    msgid = make_msgid(idstring=str(notification_id), domain=domain)
    return msgid if len(msgid) <= MAX_ID_LENGTH else make_msgid(domain="tierflow")


def smtp_failure(code: int, reply: bytes | str) -> ProviderError:
    text = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
    # 5xx is final; 4xx, and anything odd (-1: no proper reply), may pass later.
    return failure("smtp", f"{code} {text}", permanent=500 <= code < 600)


class SmtpEmailProvider:
    name = "smtp"

    def send(self, message: OutgoingMessage) -> str:
        subject, text = subject_and_text(message.body, settings.TIERFLOW_EMAIL_SUBJECT)
        msgid = message_id(message.notification_id)
        email = EmailMessage(
            subject=subject,
            body=text,
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[message.recipient],
            headers={"Message-ID": msgid},
            connection=get_connection(fail_silently=False),
        )
        try:
            email.send()
        except smtplib.SMTPRecipientsRefused as exc:
            # One recipient; its address is the key and stays out of the reason.
            [(code, reply)] = exc.recipients.values()
            raise smtp_failure(code, reply) from exc
        except smtplib.SMTPResponseException as exc:
            # Sender refused, data refused, authentication failed, HELO refused…
            raise smtp_failure(exc.smtp_code, exc.smtp_error) from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise ProviderError(
                f"smtp: the server does not support what the settings ask for: {exc}",
                permanent=True,
            ) from exc
        except (smtplib.SMTPException, OSError) as exc:
            # Disconnected, refused, timed out: the server may take it later.
            raise ProviderError(
                f"smtp: could not reach the server ({type(exc).__name__}).", permanent=False
            ) from exc
        logger.info(
            "smtp email #%s to %s accepted as %s",
            message.notification_id,
            message.masked_recipient(),
            msgid,
        )
        return msgid
