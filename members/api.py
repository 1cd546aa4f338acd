import unicodedata

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from benefits.selectors import member_coupons, points_balance
from core.api import StrictSerializer

from . import selectors
from .models import Member, external_id_validator, phone_validator
from .timeline import member_timeline

PHONE_SEPARATORS = str.maketrans("", "", " -()")


class MemberDetailsSerializer(StrictSerializer):
    external_id = serializers.CharField(max_length=64, validators=[external_id_validator])
    name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    phone = serializers.CharField(max_length=24, required=False, allow_blank=True)
    email = serializers.EmailField(max_length=254, required=False, allow_blank=True)

    def validate_phone(self, value: str) -> str:
        # NFKC turns full-width digits (１３８…), common in Chinese input, into ASCII ones.
        phone = unicodedata.normalize("NFKC", value).translate(PHONE_SEPARATORS)
        if phone:
            phone_validator(phone)
        return phone


class TierSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    discount_percent = serializers.DecimalField(max_digits=5, decimal_places=2)


class CouponSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    min_spend = serializers.DecimalField(max_digits=12, decimal_places=2)
    amount_off = serializers.DecimalField(max_digits=12, decimal_places=2)
    issued_at = serializers.DateTimeField()
    expires_at = serializers.DateTimeField()
    status = serializers.ChoiceField(choices=["issued", "redeemed", "void", "expired"])


class MemberSerializer(serializers.Serializer):
    external_id = serializers.CharField()
    name = serializers.CharField()
    joined_at = serializers.DateTimeField()
    tier = TierSerializer(allow_null=True)
    tier_since = serializers.DateTimeField(allow_null=True)
    lifetime_spend = serializers.DecimalField(max_digits=14, decimal_places=2)
    order_count = serializers.IntegerField()
    points_balance = serializers.IntegerField()
    coupons = CouponSerializer(many=True)


def _member_or_404(external_id: str) -> Member:
    member = selectors.member_get(external_id=external_id)
    if member is None:
        raise Http404(f"No member with external id '{external_id}'.")
    return member


class MemberDetailView(APIView):
    @extend_schema(operation_id="members_retrieve", responses=MemberSerializer)
    def get(self, request: Request, external_id: str) -> Response:
        """A member's tier, running totals, points balance and coupons."""
        member = _member_or_404(external_id)
        data = {
            "external_id": member.external_id,
            "name": member.name,
            "joined_at": member.joined_at,
            "tier": member.tier,
            "tier_since": member.tier_since,
            "lifetime_spend": member.lifetime_spend,
            "order_count": member.order_count,
            "points_balance": points_balance(member_id=member.pk),
            "coupons": member_coupons(member_id=member.pk),
        }
        return Response(MemberSerializer(data).data)


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
        """The member's history, newest first: orders, rule firings (with the facts the rule
        saw), tier changes, coupons, points and notifications. Each effect names its rule."""
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
