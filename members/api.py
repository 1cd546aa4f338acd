import unicodedata
from datetime import date, datetime

from django.http import Http404
from django.utils import timezone
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from benefits.selectors import growth_balance, member_coupons, points_balance
from benefits.services import points as points_services
from core.api import StrictSerializer, recorded
from notifications import selectors as notification_selectors
from notifications import services as notification_services
from rules.selectors import tier_period

from . import selectors, services
from .models import Member, external_id_validator, phone_validator
from .timeline import member_timeline

PHONE_SEPARATORS = str.maketrans("", "", " -()")


def not_in_future(value: date | datetime) -> None:
    now = timezone.now() if isinstance(value, datetime) else timezone.localdate()
    if value > now:
        raise serializers.ValidationError("This cannot be in the future.")


def phone_cleaned(value: str) -> str:
    """A phone number as stored: separators dropped, and NFKC turns full-width digits
    (１３８…), common in Chinese input, into ASCII ones."""
    phone = unicodedata.normalize("NFKC", value).translate(PHONE_SEPARATORS)
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


class CouponSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    discount = serializers.ChoiceField(choices=["amount", "percent"])
    min_spend = serializers.DecimalField(max_digits=12, decimal_places=2)
    amount_off = serializers.DecimalField(max_digits=12, decimal_places=2, allow_null=True)
    percent_off = serializers.DecimalField(max_digits=5, decimal_places=2, allow_null=True)
    max_discount = serializers.DecimalField(max_digits=12, decimal_places=2, allow_null=True)
    stacking = serializers.ChoiceField(choices=["exclusive", "stackable"])
    issued_at = serializers.DateTimeField()
    valid_from = serializers.DateTimeField(allow_null=True)
    expires_at = serializers.DateTimeField()
    status = serializers.ChoiceField(choices=["issued", "redeemed", "void", "expired"])
    redeemed_order = serializers.CharField(allow_blank=True)
    redeemed_at = serializers.DateTimeField(allow_null=True)


class ConsentStateSerializer(serializers.Serializer):
    granted = serializers.BooleanField()
    source = serializers.CharField()
    recorded_at = serializers.DateTimeField()


class KeepTierSerializer(serializers.Serializer):
    measure = serializers.ChoiceField(choices=["spend", "growth"])
    threshold = serializers.DecimalField(max_digits=14, decimal_places=2)
    reached = serializers.DecimalField(max_digits=14, decimal_places=2)
    shortfall = serializers.DecimalField(max_digits=14, decimal_places=2)
    period_start = serializers.DateTimeField(allow_null=True)


class MemberSerializer(serializers.Serializer):
    external_id = serializers.CharField()
    name = serializers.CharField()
    birthday = serializers.DateField(allow_null=True)
    joined_at = serializers.DateTimeField()
    tier = TierSerializer(allow_null=True)
    tier_since = serializers.DateTimeField(allow_null=True)
    tier_expires_at = serializers.DateTimeField(allow_null=True)
    keep_tier = KeepTierSerializer(
        allow_null=True,
        help_text="Progress towards keeping the tier in its current period; null when the "
        "tier has no keep-tier threshold.",
    )
    lifetime_spend = serializers.DecimalField(max_digits=14, decimal_places=2)
    order_count = serializers.IntegerField()
    points_balance = serializers.IntegerField()
    growth_points = serializers.IntegerField()
    tags = serializers.ListField(child=serializers.CharField())
    coupons = CouponSerializer(many=True)
    language = serializers.CharField()
    consents = serializers.DictField(
        child=ConsentStateSerializer(),
        help_text="Per channel (sms, push, email), the member's latest choice about marketing.",
    )


def member_representation(member: Member) -> dict:
    return MemberSerializer(
        {
            "external_id": member.external_id,
            "name": member.name,
            "birthday": member.birthday,
            "joined_at": member.joined_at,
            "tier": member.tier,
            "tier_since": member.tier_since,
            "tier_expires_at": member.tier_expires_at,
            "keep_tier": _keep_tier(member),
            "lifetime_spend": member.lifetime_spend,
            "order_count": member.order_count,
            "points_balance": points_balance(member_id=member.pk),
            "growth_points": growth_balance(member_id=member.pk),
            "tags": sorted(member.tags.values_list("code", flat=True)),
            "coupons": member_coupons(member_id=member.pk),
            "language": member.language,
            "consents": notification_selectors.member_consents(member_id=member.pk),
        }
    ).data


def _keep_tier(member: Member) -> dict | None:
    tier = member.tier
    if tier is None or tier.keep_threshold is None:
        return None
    figures = tier_period.period_figures(member=member)
    return {
        "measure": tier.keep_metric,
        "threshold": tier.keep_threshold,
        "reached": figures[tier.keep_metric],
        "shortfall": tier_period.keep_shortfall(tier, figures),
        "period_start": member.tier_period_start or member.tier_since,
    }


def _member_or_404(external_id: str) -> Member:
    member = selectors.member_get(external_id=external_id)
    if member is None:
        raise Http404(f"No member with external id '{external_id}'.")
    return member


class MemberUpsertView(APIView):
    @extend_schema(
        operation_id="members_upsert",
        request=MemberUpsertSerializer,
        responses={
            201: MemberSerializer,
            200: OpenApiResponse(MemberSerializer, description="An existing member, updated."),
        },
    )
    def post(self, request: Request) -> Response:
        """Create a member, or update the details of a known one (by `external_id`).
        A new member starts on the tier of rank 0 and sets off the member_joined rules."""
        serializer = MemberUpsertSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        member, created = services.member_upsert(**serializer.validated_data)
        member = selectors.member_get(external_id=member.external_id)
        return recorded(member_representation(member), created)


class MemberDetailView(APIView):
    @extend_schema(operation_id="members_retrieve", responses=MemberSerializer)
    def get(self, request: Request, external_id: str) -> Response:
        """A member's tier, running totals, balances, tags and coupons."""
        return Response(member_representation(_member_or_404(external_id)))


class TimelineQuerySerializer(StrictSerializer):
    limit = serializers.IntegerField(min_value=1, max_value=200, default=50)
    before = serializers.DateTimeField(required=False)


class MemberTimelineView(APIView):
    @extend_schema(
        operation_id="members_timeline",
        parameters=[
            OpenApiParameter("limit", int, description="Entries per page, 1 to 200 (50)."),
            OpenApiParameter("before", str, description="`next_before` of the previous page."),
        ],
        responses=inline_serializer(
            "Timeline",
            {
                "results": serializers.ListField(child=serializers.DictField()),
                "next_before": serializers.DateTimeField(allow_null=True),
            },
        ),
    )
    def get(self, request: Request, external_id: str) -> Response:
        """The member's history, newest first: orders, refunds, engagements, rule firings
        (with the facts the rule saw), tier changes, coupons, points, growth points and
        notifications. Each effect names the rule behind it."""
        query = TimelineQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        member = _member_or_404(external_id)
        entries, next_before = member_timeline(member_id=member.pk, **query.validated_data)
        return Response(
            {
                "results": entries,
                "next_before": serializers.DateTimeField().to_representation(next_before)
                if next_before
                else None,
            }
        )


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


class PointsRedeemSerializer(StrictSerializer):
    idempotency_key = serializers.CharField(
        max_length=64,
        validators=[external_id_validator],
        help_text="Unique per redemption, e.g. the till's transaction id; a retry sends it again.",
    )
    points = serializers.IntegerField(min_value=1, max_value=100_000_000)
    reason = serializers.CharField(max_length=200, required=False, default="")


class PointsRedemptionSerializer(serializers.Serializer):
    idempotency_key = serializers.CharField(source="external_id")
    points = serializers.SerializerMethodField()
    reason = serializers.CharField()
    balance = serializers.SerializerMethodField()
    at = serializers.DateTimeField(source="created_at")

    def get_points(self, entry) -> int:
        return -entry.points

    def get_balance(self, entry) -> int:
        # The balance right after this redemption, so a replay answers as the first did:
        # the member's entries are written under the member lock, so in id order.
        return points_balance(member_id=entry.member_id, up_to_id=entry.pk)


class PointsRedeemView(APIView):
    @extend_schema(
        operation_id="points_redeem",
        request=PointsRedeemSerializer,
        responses={
            201: PointsRedemptionSerializer,
            200: OpenApiResponse(PointsRedemptionSerializer, description="A replay."),
        },
    )
    def post(self, request: Request, external_id: str) -> Response:
        """Spend a member's points, oldest lots first. Never below zero: asking for more
        than the balance is a 400 on `points`. Idempotent by `idempotency_key`: a retry
        gets the recorded redemption (200), the key with other details a 409."""
        serializer = PointsRedeemSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            entry, created = points_services.points_redeem(
                member_external_id=external_id, **serializer.validated_data
            )
        except Member.DoesNotExist as exc:
            raise Http404(str(exc)) from exc
        return recorded(PointsRedemptionSerializer(entry).data, created)


MESSAGING_CHANNELS = ["sms", "push", "email"]


class ConsentSerializer(StrictSerializer):
    channel = serializers.ChoiceField(choices=MESSAGING_CHANNELS)
    granted = serializers.BooleanField()
    source = serializers.CharField(
        max_length=50, help_text="Where the choice was made: app, till, website, sms-reply…"
    )


class ConsentView(APIView):
    @extend_schema(
        operation_id="consents_record",
        request=ConsentSerializer,
        responses={201: MemberSerializer},
    )
    def post(self, request: Request, external_id: str) -> Response:
        """Record a member's consent to marketing messages on a channel, or its withdrawal,
        with where it came from. Transactional messages (tier changes, coupons issued) need
        no consent; marketing ones go out only while it is granted."""
        member = _member_or_404(external_id)
        serializer = ConsentSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        notification_services.consent_record(member=member, **serializer.validated_data)
        return Response(member_representation(member), status=201)


class OptOutSerializer(StrictSerializer):
    phone = serializers.CharField(max_length=24, required=False, allow_blank=False)
    member = serializers.CharField(
        max_length=64, required=False, validators=[external_id_validator]
    )
    channel = serializers.ChoiceField(choices=MESSAGING_CHANNELS, default="sms")
    source = serializers.CharField(max_length=50, default="opt-out")

    def validate_phone(self, value: str) -> str:
        return phone_cleaned(value)

    def validate(self, attrs: dict) -> dict:
        if bool(attrs.get("phone")) == bool(attrs.get("member")):
            raise serializers.ValidationError(
                {"phone": "Give either the phone number or the member, not both."}
            )
        return attrs


class OptOutView(APIView):
    @extend_schema(
        operation_id="consents_opt_out",
        request=OptOutSerializer,
        responses={
            200: inline_serializer("OptOut", {"members": serializers.IntegerField()}),
            404: OpenApiResponse(description="No member has this phone number or id."),
        },
    )
    def post(self, request: Request) -> Response:
        """Withdraw marketing consent, as when a member replies "T" to an SMS: by phone
        number (every member with it) or by member. Idempotent: withdrawing again records
        the reply again and changes nothing else."""
        serializer = OptOutSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        member = _member_or_404(data["member"]) if data.get("member") else None
        count = notification_services.consent_opt_out(
            phone=data.get("phone", ""),
            member=member,
            channel=data["channel"],
            source=data["source"],
        )
        if not count:
            raise Http404("No member has this phone number.")
        return Response({"members": count})
