"""The member API's composed answers: create or update a member, a member's summary, their
timeline, and a consent recorded (answered with the summary it changed)."""

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

from core.api import StrictSerializer, recorded
from members import selectors
from members import services as member_services
from members.api import MemberUpsertSerializer, TierSerializer
from members.models import Member
from notifications.api import ConsentSerializer
from notifications.services.consent import consent_record

from .selectors import member_summary
from .timeline import member_timeline


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
    return MemberSerializer(member_summary(member=member)).data


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
        member, created = member_services.member_upsert(**serializer.validated_data)
        member = selectors.member_get(external_id=member.external_id)
        return recorded(member_representation(member), created)


class MemberDetailView(APIView):
    @extend_schema(operation_id="members_retrieve", responses=MemberSerializer)
    def get(self, request: Request, external_id: str) -> Response:
        """A member's tier, running totals, balances, tags and coupons."""
        return Response(member_representation(selectors.member_get(external_id=external_id)))


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
        member = selectors.member_get(external_id=external_id)
        entries, next_before = member_timeline(member_id=member.pk, **query.validated_data)
        return Response(
            {
                "results": entries,
                "next_before": serializers.DateTimeField().to_representation(next_before)
                if next_before
                else None,
            }
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
        member = selectors.member_get(external_id=external_id)
        serializer = ConsentSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        consent_record(member=member, **serializer.validated_data)
        return Response(member_representation(member), status=201)
