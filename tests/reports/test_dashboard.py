"""The reports dashboard in the admin: who may see it, what it shows, its downloads."""

import json
from datetime import date, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from members.models import Member
from reports.registry import REPORTS
from tests.helpers import REPORTS_PROGRAMME

DASHBOARD = "/admin/reports/dashboard/"


@pytest.fixture
def analyst(db) -> Client:
    user = get_user_model().objects.create_user("analyst", password="x", is_staff=True)
    user.groups.add(Group.objects.get(name="Analysts"))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def members(db):
    Member.objects.create(external_id="M-1", name="王小明", joined_at="2026-04-01T10:00:00+08:00")
    Member.objects.create(external_id="M-2", name="李小红", joined_at="2026-04-03T10:00:00+08:00")


def test_the_dashboard_shows_every_report_with_its_chart_data(admin_client, members):
    response = admin_client.get(
        DASHBOARD, {"start": "2026-04-01", "end": "2026-04-30", "interval": "week"}
    )

    assert response.status_code == 200
    sections = {s["report"].name: s for s in response.context["sections"]}
    assert set(sections) == set(REPORTS)
    page = response.content.decode()
    assert "reports/plotly.min.js" in page
    # the page loads each report's section from its own address, for the same period
    assert f'data-src="{escape(sections["member-growth"]["url"])}"' in page
    fragment = admin_client.get(sections["member-growth"]["url"])
    growth = fragment.context["section"]
    assert [cell["value"] for cell in growth["rows"][0]] == ["2026-03-30", 2, 0, 2]
    assert growth["chart"]["data"][0]["name"] == "new_members"
    assert f'id="{growth["chart_id"]}"' in fragment.content.decode()  # what the script draws
    # a count leads to the members behind it, within the period
    assert growth["rows"][0][1]["url"] == (
        "/admin/members/member/?joined_at__gte=2026-04-01T00%3A00%3A00%2B08%3A00"
        "&joined_at__lt=2026-04-06T00%3A00%3A00%2B08%3A00"
    )


def test_the_count_link_lists_those_members(admin_client, members):
    response = admin_client.get(
        "/admin/members/member/",
        {
            "joined_at__gte": "2026-04-01T00:00:00+08:00",
            "joined_at__lt": "2026-04-03T00:00:00+08:00",
        },
    )

    assert response.status_code == 200
    assert [m.external_id for m in response.context["cl"].result_list] == ["M-1"]


def test_a_bad_period_is_shown_on_the_form_and_the_default_used(admin_client, db):
    response = admin_client.get(DASHBOARD, {"start": "2026-05-01", "end": "2026-04-01"})

    assert response.status_code == 200
    assert response.context["form"].errors["end"] == ["The period ends before it starts."]


def test_an_analyst_sees_reports_and_downloads_them(analyst, members):
    index = analyst.get("/admin/")
    response = analyst.get(
        reverse("admin:reports_download", args=["member-growth"]),
        {"start": "2026-04-01", "end": "2026-04-03", "interval": "day", "format": "csv"},
    )

    assert DASHBOARD in index.content.decode()
    assert analyst.get(DASHBOARD).status_code == 200
    assert response.status_code == 200
    assert b"".join(response.streaming_content).decode("utf-8-sig").splitlines()[1:] == [
        "2026-04-01,1,0,1",
        "2026-04-02,0,0,1",
        "2026-04-03,1,0,2",
    ]


def test_an_analyst_reads_members_masked_and_changes_nothing(analyst, members):
    member = Member.objects.get(external_id="M-1")

    listing = analyst.get("/admin/members/member/")
    change = analyst.post(f"/admin/members/member/{member.pk}/change/", {"name": "赵六"})
    rules = analyst.get("/admin/rules/rule/add/")

    assert listing.status_code == 200
    assert "王小明" not in listing.content.decode()  # masked without the personal-data permission
    assert "王**" in listing.content.decode()
    assert change.status_code == 403
    assert rules.status_code == 403
    member.refresh_from_db()
    assert member.name == "王小明"


def test_staff_without_the_permission_cannot_see_reports(db):
    user = get_user_model().objects.create_user("clerk", password="x", is_staff=True)
    client = Client()
    client.force_login(user)

    assert client.get(DASHBOARD).status_code == 403
    assert DASHBOARD not in client.get("/admin/").content.decode()


def test_the_dashboard_figures_are_json(admin_client, members):
    response = admin_client.get(
        DASHBOARD, {"start": "2026-04-01", "end": "2026-04-03", "interval": "day"}
    )
    shell = next(s for s in response.context["sections"] if s["report"].name == "member-growth")
    section = admin_client.get(shell["url"]).context["section"]

    assert json.loads(json.dumps(section["chart"]))["layout"]["height"] == 320


def test_an_unknown_reports_download_is_404(admin_client, db):
    assert admin_client.get("/admin/reports/dashboard/nope/download/").status_code == 404
    assert admin_client.get("/admin/reports/dashboard/nope/section/").status_code == 404


def test_a_section_needs_the_permission(client, django_user_model, db):
    user = django_user_model.objects.create_user("clerk", password="x", is_staff=True)
    client.force_login(user)
    assert client.get("/admin/reports/dashboard/points/section/").status_code == 403


def test_a_messages_count_leads_to_its_channel_and_status(admin_client, db):
    from reports.links import count_links
    from reports.periods import Period

    period = Period(date(2026, 4, 1), date(2026, 4, 30), "month")
    columns = ["bucket", "channel", "queued", "sent", "delivered", "failed", "suppressed"]
    [row] = count_links("messages", columns, [["2026-04-01", "sms", 1, 0, 0, 3, 0]], period)

    assert "channel__exact=sms" in row[5]["url"] and "status__in=failed" in row[5]["url"]
    assert "status__in=queued%2Csending" in row[2]["url"]
    assert row[3]["url"] is None  # nothing behind a zero
    assert admin_client.get(row[5]["url"]).status_code == 200


def test_every_linked_count_lists_as_many_rows(admin_client, api):
    # given: members who buy, move up (a coupon and points each) and get messages; one
    # order refunded in full (its coupon voided, its points taken back)
    from rules.programme.load import programme_load

    programme_load(REPORTS_PROGRAMME)
    for n in range(3):
        for k in range(2):
            response = api.order(
                external_id=f"SO-{n}-{k}",
                member={"external_id": f"M-{n}", "name": f"会员{n}", "phone": f"1380013800{n}"},
                amount="600.00",
            )
            assert response.status_code == 201, response.json()
    refund = api.post("/api/v1/orders/SO-0-1/refunds/", {"external_id": "R-1", "amount": "600.00"})
    assert refund.status_code == 201, refund.json()
    today = timezone.localdate()

    # when
    dashboard = admin_client.get(
        DASHBOARD,
        {
            "start": (today - timedelta(days=2)).isoformat(),
            "end": today.isoformat(),
            "interval": "day",
        },
    )

    # then: each linked count is the number of rows its link lists (for the points, the
    # points of those entries)
    linked = [
        (section["report"].name, cell)
        for shell in dashboard.context["sections"]
        for section in [admin_client.get(shell["url"]).context["section"]]
        for row in section["rows"]
        for cell in row
        if cell["url"]
    ]
    assert {name for name, _ in linked} >= {
        "member-growth",
        "tier-movements",
        "coupons",
        "points",
        "messages",
        "rules",
    }
    for name, cell in linked:
        listing = admin_client.get(cell["url"])
        assert listing.status_code == 200, (name, cell["url"])
        listed = listing.context["cl"]
        if name == "points":
            found = sum(abs(entry.points) for entry in listed.queryset)
        else:
            found = listed.result_count
        assert found == cell["value"], (name, cell["url"])
