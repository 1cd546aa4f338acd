from datetime import date, datetime

from django.utils import timezone
from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
)
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import StrictSerializer, recorded

from . import services
from .models import external_id_validator
from .phones import phone_normalised, phone_validator


def not_in_future(value: date | datetime) -> None:
    now = timezone.now() if isinstance(value, datetime) else timezone.localdate()
    if value > now:
        raise serializers.ValidationError("This cannot be in the future.")


def phone_cleaned(value: str) -> str:
    """A phone number as stored (E.164), or a field error."""
    phone = phone_normalised(value)
    if phone:
        phone_validator(phone)
    return phone


class MemberDetailsSerializer(StrictSerializer):
    """A member as an order or event names them: their external id, with optional details
    that create or update the member."""

    external_id = serializers.CharField(max_length=64, validators=[external_id_validator])
    name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    phone = serializers.CharField(max_length=24, required=False, allow_blank=True)
    email = serializers.EmailField(max_length=254, required=False, allow_blank=True)
    birthday = serializers.DateField(required=False, allow_null=True, validators=[not_in_future])
    language = serializers.ChoiceField(
        choices=["zh-hans", "en"],
        required=False,
        help_text="Which body of each message template the member gets (default zh-hans).",
    )

    def validate_phone(self, value: str) -> str:
        return phone_cleaned(value)


class MemberUpsertSerializer(MemberDetailsSerializer):
    joined_at = serializers.DateTimeField(
        required=False, validators=[not_in_future], help_text="For a new member only; default now."
    )


class TierSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    discount_percent = serializers.DecimalField(max_digits=5, decimal_places=2)


class EngagementCreateSerializer(StrictSerializer):
    external_id = serializers.CharField(max_length=64, validators=[external_id_validator])
    member = serializers.CharField(max_length=64, validators=[external_id_validator])
    kind = serializers.SlugField(max_length=50)
    occurred_at = serializers.DateTimeField(validators=[not_in_future])


class EngagementSerializer(serializers.Serializer):
    external_id = serializers.CharField()
    member = serializers.CharField(source="member.external_id")
    kind = serializers.CharField(source="kind.code")
    occurred_at = serializers.DateTimeField()
    recorded_at = serializers.DateTimeField()


class EngagementCreateView(APIView):
    @extend_schema(
        operation_id="events_record",
        request=EngagementCreateSerializer,
        responses={
            201: EngagementSerializer,
            200: OpenApiResponse(EngagementSerializer, description="Replay of a recorded event."),
        },
    )
    def post(self, request: Request) -> Response:
        """Record an engagement (check-in, review, share, …) of a known member. It earns
        the kind's growth points (within its daily cap) and sets off the engagement rules.
        Idempotent by `external_id`: a replay is ignored (200), other details are a 409."""
        serializer = EngagementCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        event, created = services.engagement_record(
            external_id=data["external_id"],
            member=data["member"],
            kind=data["kind"],
            occurred_at=data["occurred_at"],
        )
        return recorded(EngagementSerializer(event).data, created)
