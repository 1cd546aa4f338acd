from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db.models import F
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from core.admin import ReadOnlyAdmin
from core.idempotency import SubjectConflict

from . import services
from .models import Order, Refund


class EvaluationFilter(admin.SimpleListFilter):
    title = _("evaluation")
    parameter_name = "evaluation"

    def lookups(self, request, model_admin):
        return [("pending", _("pending")), ("done", _("evaluated"))]

    def queryset(self, request, queryset):
        if self.value() == "pending":
            return queryset.filter(seq__gt=F("member__evaluated_seq"))
        if self.value() == "done":
            return queryset.filter(seq__lte=F("member__evaluated_seq"))
        return queryset


class OrderAddForm(forms.ModelForm):
    """Operators record an order by hand the way the ERP does: through order_record."""

    class Meta:
        model = Order
        fields = ["external_id", "member", "amount", "placed_at"]

    def validate_unique(self) -> None:
        if Order.objects.filter(external_id=self.cleaned_data.get("external_id")).exists():
            self.add_error("external_id", _("An order with this external id is already recorded."))


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = [
        "external_id",
        "member",
        "amount",
        "refunded_amount",
        "currency",
        "placed_at",
        "evaluated",
    ]
    list_filter = [EvaluationFilter, "placed_at"]
    list_select_related = ["member"]
    search_fields = ["=external_id", "=member__external_id"]
    date_hierarchy = "placed_at"
    raw_id_fields = ["member"]
    actions = ["evaluate_now"]
    readonly_fields = [
        "external_id",
        "member",
        "amount",
        "refunded_amount",
        "currency",
        "placed_at",
        "recorded_at",
        "seq",
        "evaluated",
    ]

    @admin.display(description=_("evaluated"), boolean=True)
    def evaluated(self, order: Order) -> bool:
        return order.is_evaluated

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = OrderAddForm
        return super().get_form(request, obj, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj else []

    def save_model(self, request, obj, form, change) -> None:
        data = form.cleaned_data
        try:
            order, _ = services.order_record(
                external_id=data["external_id"],
                member=data["member"].external_id,
                amount=data["amount"],
                currency=settings.TIERFLOW_CURRENCY,
                placed_at=data["placed_at"],
            )
        except SubjectConflict as exc:  # recorded by the ERP a moment ago
            order = exc.subject
            self.message_user(request, str(exc), messages.WARNING)
        obj.pk = order.pk

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # orders are facts from the ERP; refunds correct them

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # never lose an order

    @admin.action(description=_("Evaluate the rules for these orders now"))
    def evaluate_now(self, request, queryset) -> None:
        sent = services.orders_evaluate_now(order_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(
            request,
            ngettext("%d order queued for evaluation.", "%d orders queued for evaluation.", sent)
            % sent,
            messages.SUCCESS,
        )


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdmin):
    list_display = ["external_id", "order", "amount", "refunded_at", "evaluated"]
    list_filter = ["refunded_at"]
    list_select_related = ["order", "member"]
    search_fields = ["=external_id", "=order__external_id"]
    date_hierarchy = "refunded_at"

    @admin.display(description=_("evaluated"), boolean=True)
    def evaluated(self, refund: Refund) -> bool:
        return refund.is_evaluated
