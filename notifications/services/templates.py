"""Writes to message templates (operators edit them in the admin; programmes load them)."""

from core.upsert import upsert

from ..models import NotificationTemplate, Purpose


def notification_template_upsert(
    *,
    code: str,
    channel: str,
    body: str,
    name: str = "",
    purpose: str = Purpose.TRANSACTIONAL,
    body_en: str = "",
) -> tuple[NotificationTemplate, bool]:
    values = {
        "channel": channel,
        "body": body,
        "name": name,
        "purpose": purpose,
        "body_en": body_en,
    }
    return upsert(NotificationTemplate, lookup={"code": code}, values=values)
