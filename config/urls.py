from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.permissions import AllowAny

from benefits.api import CheckoutQuoteView, CouponRedeemView, CouponReleaseView, PointsRedeemView
from config.health import health
from members.api import EngagementCreateView
from notifications.api import (
    AliyunReceiptView,
    DeviceDeactivateView,
    DeviceRegisterView,
    OptOutView,
    TwilioStatusCallbackView,
)
from orders.api import OrderCreateView, RefundCreateView
from profiles.api import ConsentView, MemberDetailView, MemberTimelineView, MemberUpsertView
from reports.api import ReportListView, ReportView

api = [
    path("orders/", OrderCreateView.as_view(), name="order-create"),
    path("orders/<str:external_id>/refunds/", RefundCreateView.as_view(), name="refund-create"),
    path("members/", MemberUpsertView.as_view(), name="member-upsert"),
    path("members/<str:external_id>/", MemberDetailView.as_view(), name="member-detail"),
    path("events/", EngagementCreateView.as_view(), name="event-create"),
    path("members/<str:external_id>/consents/", ConsentView.as_view(), name="consent-record"),
    path("consents/opt-out/", OptOutView.as_view(), name="consent-opt-out"),
    path(
        "members/<str:external_id>/points/redeem/",
        PointsRedeemView.as_view(),
        name="points-redeem",
    ),
    path(
        "members/<str:external_id>/timeline/",
        MemberTimelineView.as_view(),
        name="member-timeline",
    ),
    path("checkout/quote/", CheckoutQuoteView.as_view(), name="checkout-quote"),
    path("coupons/<str:code>/redeem/", CouponRedeemView.as_view(), name="coupon-redeem"),
    path("coupons/<str:code>/release/", CouponReleaseView.as_view(), name="coupon-release"),
    path(
        "members/<str:external_id>/devices/",
        DeviceRegisterView.as_view(),
        name="device-register",
    ),
    path("devices/<str:token>/", DeviceDeactivateView.as_view(), name="device-deactivate"),
    # Providers' delivery reports: no API key, each authenticates itself (notifications.api).
    path(
        "notifications/callbacks/twilio/",
        TwilioStatusCallbackView.as_view(),
        name="notifications-callback-twilio",
    ),
    path(
        "notifications/callbacks/aliyun/",
        AliyunReceiptView.as_view(),
        name="notifications-callback-aliyun",
    ),
    path(
        "schema/",
        SpectacularAPIView.as_view(authentication_classes=[], permission_classes=[AllowAny]),
        name="schema",
    ),
    path(
        "docs/",
        SpectacularSwaggerView.as_view(
            url_name="schema", authentication_classes=[], permission_classes=[AllowAny]
        ),
        name="docs",
    ),
    path("reports/", ReportListView.as_view(), name="report-list"),
    path("reports/<str:name>/", ReportView.as_view(), name="report-detail"),
]

# The admin is the product's, in every language: its name heads each page and the
# browser's tab. (The index keeps Django's translated "Site administration".)
admin.site.site_header = admin.site.site_title = "tierflow"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", health, name="health"),
    path("api/v1/", include(api)),
]

handler404 = "core.views.not_found"
handler500 = "core.views.error"
