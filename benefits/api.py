"""At the till: quote a basket, use a coupon on an order, give it back; spend points."""

from decimal import Decimal

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import Conflict, StrictSerializer, recorded
from members.api import TierSerializer
from members.models import external_id_validator

from .models import Coupon, Discount, Stacking
from .selectors import checkout_quote, coupon_terms, points_balance
from .services import points as points_services
from .services.coupons import CouponInUse, coupon_redeem, coupon_release

AMOUNT = {"max_digits": 12, "decimal_places": 2}
STATUSES = ["issued", "redeemed", "void", "expired"]
REASONS = [
    "unknown",
    "other_member",
    "void",
    "used",
    "expired",
    "not_yet_valid",
    "below_min_spend",
    "not_combinable",
    "nothing_left",
]


class CheckoutQuoteRequestSerializer(StrictSerializer):
    member = serializers.CharField(max_length=64, validators=[external_id_validator])
    amount = serializers.DecimalField(**AMOUNT, min_value=Decimal(0))
    coupons = serializers.ListField(
        child=serializers.CharField(max_length=20),
        required=False,
        default=list,
        max_length=20,
        help_text="Coupon codes the shopper offers; a code given twice counts once.",
    )


class QuoteCouponSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField(allow_null=True)
    applies = serializers.BooleanField()
    discount = serializers.DecimalField(**AMOUNT)
    reason_code = serializers.ChoiceField(choices=REASONS, allow_null=True)
    reason = serializers.CharField(allow_null=True)


class CheckoutQuoteSerializer(serializers.Serializer):
    member = serializers.CharField()
    amount = serializers.DecimalField(**AMOUNT)
    tier = TierSerializer(allow_null=True)
    tier_discount = serializers.DecimalField(**AMOUNT)
    amount_after_tier_discount = serializers.DecimalField(**AMOUNT)
    coupons = QuoteCouponSerializer(many=True)
    coupon_discount = serializers.DecimalField(**AMOUNT)
    total_discount = serializers.DecimalField(**AMOUNT)
    final_amount = serializers.DecimalField(**AMOUNT)


class CheckoutQuoteView(APIView):
    @extend_schema(
        operation_id="checkout_quote",
        request=CheckoutQuoteRequestSerializer,
        responses={200: CheckoutQuoteSerializer},
    )
    def post(self, request: Request) -> Response:
        """What the member would pay for a basket: their tier's discount, then the best
        combination of the coupons offered, each with what it takes off or why it does
        not apply. Stackable coupons combine with each other; an exclusive coupon
        combines with none. Nothing is written and no coupon is used up."""
        serializer = CheckoutQuoteRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        quote = checkout_quote(
            member_external_id=data["member"], amount=data["amount"], coupon_codes=data["coupons"]
        )
        return Response(CheckoutQuoteSerializer(quote).data)


class CouponDetailSerializer(serializers.Serializer):
    code = serializers.CharField()
    member = serializers.CharField()
    name = serializers.CharField()
    discount = serializers.ChoiceField(choices=Discount.values)
    min_spend = serializers.DecimalField(**AMOUNT)
    amount_off = serializers.DecimalField(**AMOUNT, allow_null=True)
    percent_off = serializers.DecimalField(max_digits=5, decimal_places=2, allow_null=True)
    max_discount = serializers.DecimalField(**AMOUNT, allow_null=True)
    stacking = serializers.ChoiceField(choices=Stacking.values)
    issued_at = serializers.DateTimeField()
    valid_from = serializers.DateTimeField(allow_null=True)
    expires_at = serializers.DateTimeField()
    status = serializers.ChoiceField(choices=STATUSES)
    redeemed_order = serializers.CharField(allow_blank=True)
    redeemed_at = serializers.DateTimeField(allow_null=True)


def coupon_representation(coupon: Coupon) -> dict:
    return CouponDetailSerializer(
        {**coupon_terms(coupon), "member": coupon.member.external_id}
    ).data


class CouponRedeemRequestSerializer(StrictSerializer):
    member = serializers.CharField(max_length=64, validators=[external_id_validator])
    order = serializers.CharField(max_length=64, validators=[external_id_validator])
    amount = serializers.DecimalField(
        **AMOUNT,
        min_value=Decimal(0),
        required=False,
        help_text="The basket before discounts, checked against the minimum spend.",
    )


class CouponReleaseRequestSerializer(StrictSerializer):
    order = serializers.CharField(max_length=64, validators=[external_id_validator])


NOT_FOUND = OpenApiResponse(OpenApiTypes.OBJECT, description="No coupon with this code.")


class CouponRedeemView(APIView):
    @extend_schema(
        operation_id="coupons_redeem",
        request=CouponRedeemRequestSerializer,
        responses={
            201: CouponDetailSerializer,
            200: OpenApiResponse(CouponDetailSerializer, description="Replay: used on this order."),
            404: NOT_FOUND,
            409: OpenApiResponse(OpenApiTypes.OBJECT, description="Used on another order."),
        },
    )
    def post(self, request: Request, code: str) -> Response:
        """Use the member's coupon on an order, exactly once. A replay for the same order
        returns 200; a coupon used on another order is a 409. A coupon that is expired,
        not yet valid or void, another member's, or over a basket `amount` below its
        minimum spend is refused with a field error, and nothing changes."""
        serializer = CouponRedeemRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            coupon, created = coupon_redeem(
                code=code,
                member_external_id=data["member"],
                order_external_id=data["order"],
                amount=data.get("amount"),
            )
        except Coupon.DoesNotExist:
            raise Http404(f"No coupon with code '{code}'.") from None
        except CouponInUse as exc:
            raise Conflict(str(exc)) from exc
        return recorded(coupon_representation(coupon), created)


class CouponReleaseView(APIView):
    @extend_schema(
        operation_id="coupons_release",
        request=CouponReleaseRequestSerializer,
        responses={
            200: CouponDetailSerializer,
            404: NOT_FOUND,
            409: OpenApiResponse(OpenApiTypes.OBJECT, description="Used on another order."),
        },
    )
    def post(self, request: Request, code: str) -> Response:
        """Give back a coupon used on an order that did not go ahead: it can be used
        again until it expires. Idempotent: a coupon not in use is returned unchanged. A
        coupon used on another order is a 409."""
        serializer = CouponReleaseRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            coupon = coupon_release(code=code, order_external_id=serializer.validated_data["order"])
        except Coupon.DoesNotExist:
            raise Http404(f"No coupon with code '{code}'.") from None
        except CouponInUse as exc:
            raise Conflict(str(exc)) from exc
        return Response(coupon_representation(coupon))


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
        entry, created = points_services.points_redeem(
            member_external_id=external_id, **serializer.validated_data
        )
        return recorded(PointsRedemptionSerializer(entry).data, created)
