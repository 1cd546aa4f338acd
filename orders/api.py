from decimal import Decimal
from typing import Any

from django.conf import settings
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import StrictSerializer, recorded
from members.api import MemberDetailsSerializer
from members.models import external_id_validator

from . import services
from .models import Order, Refund, validate_order_amount_ceiling, validate_placed_at


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string", "description": "External id of a known member."},
            {"$ref": "#/components/schemas/MemberDetails"},
        ]
    }
)
class MemberReferenceField(serializers.Field):
    """A known member's external id, or member details that create or update the member."""

    default_error_messages = {"invalid": "Give a member external id, or an object with one."}

    def to_internal_value(self, data: Any) -> str | dict:
        if isinstance(data, str):
            return serializers.CharField(
                max_length=64, validators=[external_id_validator]
            ).run_validation(data)
        if isinstance(data, dict):
            details = MemberDetailsSerializer(data=data)
            details.is_valid(raise_exception=True)
            return dict(details.validated_data)
        self.fail("invalid")

    def to_representation(self, value: Any) -> Any:
        return value


class OrderCreateSerializer(StrictSerializer):
    external_id = serializers.CharField(max_length=64, validators=[external_id_validator])
    member = MemberReferenceField()
    amount = serializers.DecimalField(
        max_digits=12,
        decimal_places=2,
        min_value=Decimal(0),
        validators=[validate_order_amount_ceiling],
    )
    currency = serializers.CharField(max_length=3)
    placed_at = serializers.DateTimeField(validators=[validate_placed_at])

    def validate_currency(self, value: str) -> str:
        if value.upper() != settings.TIERFLOW_CURRENCY:
            raise serializers.ValidationError(
                f"Only {settings.TIERFLOW_CURRENCY} is accepted.", code="currency"
            )
        return value.upper()


class OrderSerializer(serializers.ModelSerializer):
    member = serializers.SlugRelatedField(slug_field="external_id", read_only=True)

    class Meta:
        model = Order
        fields = ["external_id", "member", "amount", "currency", "placed_at", "recorded_at"]


class OrderCreateView(APIView):
    @extend_schema(
        operation_id="orders_record",
        request=OrderCreateSerializer,
        responses={
            201: OrderSerializer,
            200: OpenApiResponse(OrderSerializer, description="Replay of a recorded order."),
            409: OpenApiResponse(OpenApiTypes.OBJECT, description="Same id, other payload."),
        },
    )
    def post(self, request: Request) -> Response:
        """Record an order. Idempotent by `external_id`: a replay with the same payload
        returns the recorded order (200); a different payload returns 409."""
        serializer = OrderCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        order, created = services.order_record(**serializer.validated_data)
        return recorded(OrderSerializer(order).data, created)


class RefundCreateSerializer(StrictSerializer):
    external_id = serializers.CharField(max_length=64, validators=[external_id_validator])
    amount = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=Decimal("0.01"))
    refunded_at = serializers.DateTimeField(
        required=False, help_text="When the refund was made; default: when it is recorded."
    )


class RefundSerializer(serializers.ModelSerializer):
    order = serializers.SlugRelatedField(slug_field="external_id", read_only=True)

    class Meta:
        model = Refund
        fields = ["external_id", "order", "amount", "refunded_at", "recorded_at"]


class RefundCreateView(APIView):
    @extend_schema(
        operation_id="refunds_record",
        request=RefundCreateSerializer,
        responses={
            201: RefundSerializer,
            200: OpenApiResponse(RefundSerializer, description="Replay of a recorded refund."),
            404: OpenApiResponse(OpenApiTypes.OBJECT, description="No such order."),
            409: OpenApiResponse(OpenApiTypes.OBJECT, description="Same id, other payload."),
        },
    )
    def post(self, request: Request, external_id: str) -> Response:
        """Refund part or all of an order, never more than what remains of it. The
        member's spend drops at once; the points and growth points the order earned, and
        those rules awarded for it, are taken back in proportion. Idempotent by the
        refund's `external_id`: a replay returns 200, other details a 409."""
        if not Order.objects.filter(external_id=external_id).exists():
            raise Http404(f"No order with external id '{external_id}'.")
        serializer = RefundCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        refund, created = services.refund_record(
            order_external_id=external_id, **serializer.validated_data
        )
        return recorded(RefundSerializer(refund).data, created)
