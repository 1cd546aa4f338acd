"""Shared API pieces: the strict serializer base, the 409 and 503 errors.

Every error response has one shape (drf-standardized-errors), documented in the README:
    {"type": "validation_error" | "client_error" | "server_error",
     "errors": [{"code": "...", "detail": "...", "attr": "member.phone" | null}]}
"""

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import InterfaceError, OperationalError
from drf_standardized_errors.handler import ExceptionHandler as StandardExceptionHandler
from rest_framework import exceptions, serializers, status
from rest_framework.fields import get_error_detail
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.validators import UniqueValidator

from .errors import NotFound
from .idempotency import SubjectConflict
from .text import HOSTILE_TEXT


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "This conflicts with an earlier request."
    default_code = "conflict"


class DatabaseUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "The database is unavailable for a moment; retry the request."
    default_code = "database_unavailable"
    wait = 5  # seconds, sent as Retry-After: a restart is over in a few


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is larger than this API accepts."
    default_code = "too_large"


class StrictFieldsMixin:
    """Rejects fields it does not know, so a typo is an error rather than silently ignored."""

    def to_internal_value(self, data: Any) -> Any:
        errors: dict[str, Any] = {}
        if isinstance(data, Mapping):
            errors.update(self._hostile_values(data))
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            errors.update({k: v for k, v in exc.detail.items() if k not in errors})
            value = None
        if isinstance(data, Mapping):
            writable = {field.field_name for field in self._writable_fields}
            for name in sorted(set(data) - writable):
                errors[name] = [serializers.ErrorDetail("Unknown field.", code="unknown_field")]
        if errors:
            raise serializers.ValidationError(errors)
        return value

    def _hostile_values(self, data: Mapping) -> dict[str, list]:
        """What a field would accept but a client never means: a number or a list for
        text, control or direction characters (U+202E) in text, a negative zero for an
        amount (-0.00, which a replay of 0.00 would then conflict with), a date-time
        before 1900 (local time zones had no standard offset then)."""
        errors = {}
        for field in self._writable_fields:
            value = data.get(field.field_name)
            problem = _hostile(field, value) if value is not None else None
            if problem:
                errors[field.field_name] = [serializers.ErrorDetail(problem, code="invalid")]
        return errors


def _hostile(field: serializers.Field, value: Any) -> str | None:
    if isinstance(field, serializers.CharField):
        if not isinstance(value, str):
            return "Not a string."
        if HOSTILE_TEXT.search(value):
            return "Contains control or direction characters."
    elif isinstance(field, serializers.DecimalField):
        if str(value).strip().startswith("-") and _is_zero(value):
            return "A negative zero is not an amount: send 0."
    elif isinstance(field, serializers.DateTimeField | serializers.DateField):
        year = str(value)[:4]
        return "Give a date from 1900 on." if year.isdigit() and int(year) < 1900 else None
    return None


def _is_zero(value: Any) -> bool:
    try:
        return Decimal(str(value).strip()) == 0
    except InvalidOperation:
        return False


class StrictSerializer(StrictFieldsMixin, serializers.Serializer):
    pass


class StrictModelSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    """Fields, limits and defaults from the model; unknown fields refused; and the model's
    own clean() run, so cross-field mistakes are reported against their fields. Uniqueness
    is left to the caller (these describe rows to create or update by code)."""

    def validate(self, attrs: dict) -> dict:
        instance = self.Meta.model(**attrs)
        try:
            instance.clean()
        except DjangoValidationError as exc:
            raise serializers.ValidationError(serializers.as_serializer_error(exc)) from exc
        # clean() may normalise (e.g. clear a field that does not apply).
        return {name: getattr(instance, name) for name in attrs}

    def get_validators(self) -> list:
        return []

    def get_fields(self) -> dict:
        fields = super().get_fields()
        for field in fields.values():
            field.validators = [v for v in field.validators if not isinstance(v, UniqueValidator)]
        return fields


class ExceptionHandler(StandardExceptionHandler):
    """Services raise Django's ValidationError, reported as field errors, NotFound, a 404,
    and SubjectConflict, a 409."""

    def convert_known_exceptions(self, exc: Exception) -> Exception:
        if isinstance(exc, SubjectConflict):
            return Conflict(str(exc))
        if isinstance(exc, RequestDataTooBig):
            return PayloadTooLarge(
                f"The request body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes."
            )
        if isinstance(exc, NotFound):
            return exceptions.NotFound(str(exc))
        if isinstance(exc, (OperationalError, InterfaceError)):
            # A dropped connection (a database restart) or a lock timeout: nothing was
            # recorded, and a retry of the same request is safe (idempotent by id).
            return DatabaseUnavailable()
        if isinstance(exc, DjangoValidationError):
            detail = get_error_detail(exc)
            if isinstance(detail, dict) and NON_FIELD_ERRORS in detail:
                detail[api_settings.NON_FIELD_ERRORS_KEY] = detail.pop(NON_FIELD_ERRORS)
            return exceptions.ValidationError(detail=detail)
        return super().convert_known_exceptions(exc)


def recorded(data: Any, created: bool) -> Response:
    """201 for what was just recorded, 200 for a replay (or an update) of it."""
    return Response(data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)
