from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from rest_framework.test import APIClient
from rest_framework_api_key.models import APIKey

from rules.models import Rule

pytestmark = pytest.mark.django_db


def test_create_api_key_prints_a_working_key_once():
    # when
    out, err = StringIO(), StringIO()
    call_command("create_api_key", "erp-production", stdout=out, stderr=err)

    # then
    key = out.getvalue().strip()
    assert APIKey.objects.get_from_key(key).name == "erp-production"
    assert key not in err.getvalue()


def test_demo_setup_loads_the_seed_and_prints_a_login_and_a_key():
    # when
    out = StringIO()
    call_command("demo_setup", stdout=out)

    # then
    text = out.getvalue()
    password = text.split("password ")[1].split()[0]
    key = text.split("API key:")[1].split()[0]
    assert get_user_model().objects.get(username="admin").check_password(password)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert client.get("/api/v1/members/nobody/").status_code == 404  # authenticated
    assert set(Rule.objects.values_list("code", flat=True)) == {
        "gold-at-10000",
        "silver-at-2000",
        "silver-by-growth",
        "gold-keep-reminder",
        "tier-renewed",
        "tier-lapsed",
    }
