"""The reports API on data that can be counted by hand, built through the ERP's API with
back-dated joins and orders (TIME_ZONE is Asia/Shanghai)."""

import io
import zipfile

import pytest

SHANGHAI = "+08:00"


def _member(api, external_id: str, joined: str) -> None:
    response = api.post(
        "/api/v1/members/",
        {"external_id": external_id, "name": "会员", "joined_at": f"{joined}{SHANGHAI}"},
    )
    assert response.status_code == 201, response.json()


def _order(api, external_id: str, member: str, placed: str, amount: str = "100.00") -> None:
    response = api.post(
        "/api/v1/orders/",
        {
            "external_id": external_id,
            "member": {"external_id": member},
            "amount": amount,
            "currency": "CNY",
            "placed_at": f"{placed}{SHANGHAI}",
        },
    )
    assert response.status_code == 201, response.json()


@pytest.fixture
def shop(api):
    """M-3 joined in February; M-1 on Monday 30 March, and bought twice on 1 April (one
    visit); M-2 on Thursday 2 April, and bought that night and just after midnight on
    Sunday 5 April (16:10 on 4 April in UTC); M-3 bought on 20 April."""
    _member(api, "M-3", "2026-02-10T12:00:00")
    _member(api, "M-1", "2026-03-30T10:00:00")
    _member(api, "M-2", "2026-04-02T23:30:00")
    _order(api, "SO-1", "M-1", "2026-04-01T10:00:00")
    _order(api, "SO-2", "M-1", "2026-04-01T18:00:00")
    _order(api, "SO-3", "M-2", "2026-04-02T23:50:00")
    _order(api, "SO-4", "M-2", "2026-04-05T00:10:00")
    _order(api, "SO-5", "M-3", "2026-04-20T09:00:00")
    return api


def _report(api, name: str, **params):
    response = api.get(f"/api/v1/reports/{name}/", params)
    assert response.status_code == 200, response.content
    return response.json()


def test_member_growth_by_week(shop):
    body = _report(
        shop, "member-growth", **{"from": "2026-03-30", "to": "2026-04-12", "interval": "week"}
    )

    assert body["columns"] == ["bucket", "new_members", "active_members", "total_members"]
    assert body["rows"] == [["2026-03-30", 2, 2, 3], ["2026-04-06", 0, 0, 3]]
    assert (body["report"], body["interval"], body["from"], body["to"]) == (
        "member-growth",
        "week",
        "2026-03-30",
        "2026-04-12",
    )


def test_member_growth_by_day_uses_business_dates(shop):
    body = _report(shop, "member-growth", **{"from": "2026-04-04", "to": "2026-04-05"})

    # the order just after midnight in Shanghai is on 5 April, not on the UTC date
    assert body["rows"] == [["2026-04-04", 0, 0, 3], ["2026-04-05", 0, 1, 3]]


def test_repurchase_counts_visits_on_different_days(shop):
    weekly = _report(
        shop, "repurchase", **{"from": "2026-03-30", "to": "2026-04-05", "interval": "week"}
    )
    monthly = _report(
        shop, "repurchase", **{"from": "2026-04-01", "to": "2026-04-30", "interval": "month"}
    )

    # M-1's two orders on one day are one visit; M-2 came back on Sunday
    assert weekly["rows"] == [["2026-03-30", 2, 1, "0.5000"]]
    assert monthly["rows"] == [["2026-04-01", 3, 1, "0.3333"]]


def test_the_list_names_every_report_and_its_columns(api):
    response = api.get("/api/v1/reports/")

    reports = {report["name"]: report for report in response.json()["results"]}
    assert {"member-growth", "repurchase"} <= set(reports)
    assert [c["name"] for c in reports["repurchase"]["columns"]] == [
        "bucket",
        "buyers",
        "repeat_buyers",
        "repurchase_rate",
    ]
    assert reports["repurchase"]["columns"][3]["kind"] == "rate"


def test_csv_and_xlsx_hold_the_same_rows(shop):
    params = {"from": "2026-03-30", "to": "2026-04-05", "interval": "week"}

    csv_response = shop.get("/api/v1/reports/repurchase/", {**params, "format": "csv"})
    xlsx_response = shop.get("/api/v1/reports/repurchase/", {**params, "format": "xlsx"})

    assert csv_response.status_code == 200
    assert csv_response["Content-Disposition"] == (
        'attachment; filename="repurchase_2026-03-30_2026-04-05_week.csv"'
    )
    text = b"".join(csv_response.streaming_content).decode("utf-8")
    assert text == "\ufeffbucket,buyers,repeat_buyers,repurchase_rate\r\n2026-03-30,2,1,0.5000\r\n"
    assert xlsx_response.status_code == 200
    assert "repurchase_2026-03-30_2026-04-05_week.xlsx" in xlsx_response["Content-Disposition"]
    book = b"".join(xlsx_response.streaming_content)
    with zipfile.ZipFile(io.BytesIO(book)) as archive:
        sheet = archive.read("xl/worksheets/sheet1.xml").decode()
    assert "<v>0.5</v>" in sheet and "<v>2</v>" in sheet


@pytest.mark.parametrize(
    ("params", "attr"),
    [
        ({"from": "2026-04-01"}, "to"),
        ({"from": "April", "to": "2026-04-30"}, "from"),
        ({"from": "2026-05-01", "to": "2026-04-30"}, "to"),
        ({"from": "2026-04-01", "to": "2026-04-30", "interval": "hour"}, "interval"),
        ({"from": "2000-01-01", "to": "2026-01-01", "interval": "day"}, "interval"),
        ({"from": "2026-04-01", "to": "2026-04-30", "format": "pdf"}, "format"),
    ],
)
def test_bad_queries_are_400_in_the_error_shape(api, params, attr):
    response = api.get("/api/v1/reports/member-growth/", params)

    assert response.status_code == 400
    body = response.json()
    assert body["type"] == "validation_error"
    assert [error["attr"] for error in body["errors"]] == [attr]


def test_an_unknown_report_is_404(api):
    response = api.get("/api/v1/reports/cash-flow/", {"from": "2026-04-01", "to": "2026-04-30"})

    assert response.status_code == 404
    assert response.json()["errors"][0]["detail"] == "No report named 'cash-flow'."


def test_reports_need_an_api_key(client):
    assert client.get("/api/v1/reports/").status_code in (401, 403)


def test_cohorts_by_the_month_of_the_first_order(api):
    # given: members by their first order's month; M-4's first order is in December
    for external_id in ("M-1", "M-2", "M-3", "M-4"):
        _member(api, external_id, "2025-06-01T10:00:00")
    for number, (member, placed) in enumerate(
        [
            ("M-1", "2026-01-15T10:00:00"),
            ("M-1", "2026-02-03T10:00:00"),
            ("M-1", "2026-04-10T10:00:00"),
            ("M-2", "2026-01-20T10:00:00"),
            ("M-2", "2026-01-25T10:00:00"),
            ("M-3", "2026-02-05T10:00:00"),
            ("M-3", "2026-03-01T00:30:00"),  # 28 February in UTC
            ("M-4", "2025-12-31T23:30:00"),
            ("M-4", "2026-01-02T10:00:00"),
        ]
    ):
        _order(api, f"SO-{number}", member, placed)

    # when: a period from mid-January (cohorts are whole months)
    body = _report(
        api, "cohorts", **{"from": "2026-01-10", "to": "2026-02-28", "interval": "month"}
    )

    # then
    assert body["columns"][:5] == ["cohort", "size", "month_0", "month_1", "month_2"]
    assert len(body["columns"]) == 14
    january, february = body["rows"]
    assert january[:6] == ["2026-01-01", 2, "1.0000", "0.5000", "0.0000", "0.5000"]
    assert february[:4] == ["2026-02-01", 1, "1.0000", "1.0000"]
    assert set(february[4:]) == {"0.0000"}
