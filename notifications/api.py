"""Providers' delivery reports, the app installations that receive push messages, and
marketing opt-outs.

The callbacks take no API key: each proves itself, Twilio by signing the request with
our auth token, Aliyun by the shared token in the URL. They answer 2xx to every report
they could read, known or not, so providers do not retry reports we cannot use.
"""

import hmac
import logging

from django.conf import settings
from django.http import Http404
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.parsers import FormParser, JSONParser
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import StrictSerializer, recorded
from members import selectors as member_selectors
from members.api import phone_cleaned
from members.models import external_id_validator

from .models import Device
from .providers.twilio import request_signature
from .services.consent import consent_opt_out
from .services.delivery import notification_delivery_report
from .services.devices import device_deactivate, device_register

logger = logging.getLogger(__name__)

TWILIO_DELIVERED = {"delivered"}
TWILIO_FAILED = {"undelivered", "failed"}
ALIYUN_ANSWER = {"code": 0, "msg": "成功"}  # what Aliyun expects, or it pushes again


class TwilioStatusSerializer(serializers.Serializer):
    """The fields we read; Twilio sends more (To, From, AccountSid…), all signed."""

    MessageSid = serializers.CharField()
    MessageStatus = serializers.CharField()
    ErrorCode = serializers.CharField(required=False, allow_blank=True)


class TwilioStatusCallbackView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    parser_classes = [FormParser]

    @extend_schema(
        operation_id="callbacks_twilio",
        auth=[],
        request={"application/x-www-form-urlencoded": TwilioStatusSerializer},
        responses={
            200: OpenApiResponse(description="Read (unknown messages and statuses ignored)."),
            403: OpenApiResponse(description="X-Twilio-Signature missing or invalid."),
        },
    )
    def post(self, request: Request) -> Response:
        """Twilio's status callback for an SMS: "delivered" marks the message delivered,
        "undelivered" or "failed" fails it with Twilio's error code; other statuses
        (queued, sent…) change nothing. Checked against X-Twilio-Signature, computed over
        TIERFLOW_PUBLIC_URL + this path and the form parameters with the auth token."""
        token = settings.TIERFLOW_TWILIO_AUTH_TOKEN
        public = settings.TIERFLOW_PUBLIC_URL.rstrip("/")
        given = request.headers.get("X-Twilio-Signature", "")
        if not (token and public and given):
            raise PermissionDenied(
                "Twilio callbacks are not configured, or the request is unsigned."
            )
        params = {name: request.data.getlist(name) for name in request.data}
        expected = request_signature(f"{public}{request.get_full_path()}", params, token)
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise PermissionDenied("Invalid Twilio signature.")
        serializer = TwilioStatusSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        report = serializer.validated_data
        if report["MessageStatus"] in TWILIO_DELIVERED | TWILIO_FAILED:
            notification_delivery_report(
                provider="twilio",
                provider_message_id=report["MessageSid"],
                delivered=report["MessageStatus"] in TWILIO_DELIVERED,
                reason=f"Twilio {report['MessageStatus']}, error {report.get('ErrorCode') or '-'}",
            )
        return Response(status=status.HTTP_200_OK)


class AliyunReportSerializer(serializers.Serializer):
    """One SmsReport; Aliyun also sends phone_number, send_time, report_time, sms_size."""

    biz_id = serializers.CharField()
    success = serializers.BooleanField()
    err_code = serializers.CharField(required=False, allow_blank=True, default="")
    err_msg = serializers.CharField(required=False, allow_blank=True, default="")
    out_id = serializers.CharField(required=False, allow_blank=True, default="")


class AliyunReceiptView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="callbacks_aliyun",
        auth=[],
        parameters=[
            OpenApiParameter("token", str, required=True, description="The shared secret.")
        ],
        request=AliyunReportSerializer(many=True),
        responses={
            200: OpenApiResponse(description='{"code": 0, "msg": "成功"}, as Aliyun expects.'),
            403: OpenApiResponse(description="Missing or wrong token."),
        },
    )
    def post(self, request: Request) -> Response:
        """Aliyun's SMS delivery receipts (SmsReport), pushed as a JSON list: each marks
        the message with that BizId delivered, or failed with err_code and err_msg.
        Authenticated by ?token=TIERFLOW_CALLBACK_TOKEN."""
        expected = settings.TIERFLOW_CALLBACK_TOKEN
        given = request.query_params.get("token", "")
        if not (expected and hmac.compare_digest(given.encode(), expected.encode())):
            raise PermissionDenied("Missing or wrong callback token.")
        serializer = AliyunReportSerializer(data=request.data, many=True)
        serializer.is_valid(raise_exception=True)
        for report in serializer.validated_data:
            changed = notification_delivery_report(
                provider="aliyun",
                provider_message_id=report["biz_id"],
                delivered=report["success"],
                reason=f"{report['err_code']} {report['err_msg']}".strip(),
            )
            if not changed:
                # A replay, or an attempt whose answer we never got (out_id names the
                # message): kept in the log for reconciliation, nothing else changes.
                logger.info(
                    "aliyun report for BizId %s (out_id %s) changed nothing",
                    report["biz_id"],
                    report["out_id"] or "-",
                )
        return Response(ALIYUN_ANSWER)


class DeviceRegisterSerializer(StrictSerializer):
    platform = serializers.ChoiceField(choices=Device.Platform.choices)
    token = serializers.CharField(max_length=500, help_text="The push token FCM gave the app.")


class DeviceSerializer(serializers.Serializer):
    member = serializers.CharField(source="member.external_id")
    platform = serializers.CharField()
    token = serializers.CharField()
    active = serializers.BooleanField(source="is_active")
    registered_at = serializers.DateTimeField()
    last_seen_at = serializers.DateTimeField()


class DeviceRegisterView(APIView):
    @extend_schema(
        operation_id="devices_register",
        request=DeviceRegisterSerializer,
        responses={
            201: DeviceSerializer,
            200: OpenApiResponse(DeviceSerializer, description="A known token, refreshed."),
            404: OpenApiResponse(description="No member with this external id."),
        },
    )
    def post(self, request: Request, external_id: str) -> Response:
        """Register the member's app installation for push messages, or refresh a known
        token (it moves to this member if another had it: a shared phone). Push goes to
        the member's active device registered or refreshed most recently."""
        member = member_selectors.member_get(external_id=external_id)
        serializer = DeviceRegisterSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        device, created = device_register(member=member, **serializer.validated_data)
        return recorded(DeviceSerializer(device).data, created)


class DeviceDeactivateView(APIView):
    @extend_schema(
        operation_id="devices_deactivate",
        responses={204: OpenApiResponse(description="The token gets no more push messages.")},
    )
    def delete(self, request: Request, token: str) -> Response:
        """Stop push messages to an app installation (the member signed out). Idempotent:
        an unknown or already inactive token is a 204 too."""
        device_deactivate(token=token)
        return Response(status=status.HTTP_204_NO_CONTENT)


MESSAGING_CHANNELS = ["sms", "push", "email"]


class ConsentSerializer(StrictSerializer):
    channel = serializers.ChoiceField(choices=MESSAGING_CHANNELS)
    granted = serializers.BooleanField()
    source = serializers.CharField(
        max_length=50, help_text="Where the choice was made: app, till, website, sms-reply…"
    )


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
            200: inline_serializer("OptOutResult", {"members": serializers.IntegerField()}),
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
        member = (
            member_selectors.member_get(external_id=data["member"]) if data.get("member") else None
        )
        count = consent_opt_out(
            phone=data.get("phone", ""),
            member=member,
            channel=data["channel"],
            source=data["source"],
        )
        if not count:
            raise Http404("No member has this phone number.")
        return Response({"members": count})
