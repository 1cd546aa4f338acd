"""App installations that receive push messages: registered by the app, deactivated when
the push provider says the token is gone."""

from django.db import IntegrityError, transaction
from django.utils import timezone

from members.models import Member

from ..models import Device


def device_register(*, member: Member, platform: str, token: str) -> tuple[Device, bool]:
    """Register (or refresh) an app installation for push. A token moves to the member
    who registers it last: a shared phone signs in as someone else."""
    device = Device.objects.filter(token=token).first()
    if device is None:
        try:
            with transaction.atomic():
                return Device.objects.create(member=member, platform=platform, token=token), True
        except IntegrityError:
            device = Device.objects.get(token=token)
    device.member, device.platform, device.is_active = member, platform, True
    device.last_seen_at = timezone.now()
    device.save(update_fields=["member", "platform", "is_active", "last_seen_at"])
    return device, False


def device_deactivate(*, token: str) -> bool:
    """The provider says the token is no longer valid (the app was removed)."""
    return bool(Device.objects.filter(token=token, is_active=True).update(is_active=False))
