import re
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

from rules.models import Rule
from tests.factories import rule_form

CATALOGUE = Path(settings.BASE_DIR) / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"


def test_every_message_has_a_simplified_chinese_translation():
    entries = CATALOGUE.read_text(encoding="utf-8").split("\n\n")[1:]  # after the header
    untranslated = [entry for entry in entries if re.search(r'msgstr(\[0\])? ""\s*$', entry)]
    fuzzy = [entry for entry in entries if "#, fuzzy" in entry]
    assert untranslated == [] and fuzzy == []


@pytest.mark.django_db
def test_the_admin_speaks_the_browsers_language(admin_client, seed):
    # given
    rule = Rule.objects.get(code="silver-at-2000")

    # when
    page = admin_client.get(
        reverse("admin:rules_rule_change", args=[rule.pk]), HTTP_ACCEPT_LANGUAGE="zh-hans"
    )
    test_page = admin_client.get(
        reverse("admin:rules_rule_test", args=[rule.pk]) + "?member=nobody",
        HTTP_ACCEPT_LANGUAGE="zh-hans",
    )

    # then
    text = page.content.decode()
    for chinese in ("预览", "对会员测试", "模拟", "应用于现有会员", "优先级"):
        assert chinese in text
    assert "Preview" not in text
    assert "对会员测试" in test_page.content.decode()


@pytest.mark.django_db
def test_condition_mistakes_are_explained_in_chinese(admin_client, seed):
    response = admin_client.post(
        reverse("admin:rules_rule_add"),
        rule_form(**{"conditions-1-days": ""}),
        HTTP_ACCEPT_LANGUAGE="zh-hans",
    )
    assert response.status_code == 200
    assert "“最近 N 天订单数”需要填写回溯天数。" in response.content.decode()
