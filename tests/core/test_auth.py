from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_api_key.models import APIKey

from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db

MEMBER_URL = "/api/v1/members/M-1/"


@pytest.fixture
def member():
    return MemberFactory(external_id="M-1")


def get_with(authorization: str | None):
    client = APIClient()
    if authorization is not None:
        client.credentials(HTTP_AUTHORIZATION=authorization)
    return client.get(MEMBER_URL)


def test_a_valid_key_is_accepted(member):
    _, key = APIKey.objects.create_key(name="erp")
    assert get_with(f"Bearer {key}").status_code == 200


@pytest.mark.parametrize(
    "authorization", [None, "", "Bearer", "Bearer ", "Bearer nope.nope", "Basic dXNlcjpwYXNz"]
)
def test_no_key_or_a_wrong_key_is_a_401_with_a_challenge(member, authorization):
    response = get_with(authorization)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["type"] == "client_error"


def test_a_revoked_key_is_a_401(member):
    # given
    api_key, key = APIKey.objects.create_key(name="erp")
    api_key.revoked = True
    api_key.save()

    # then
    assert get_with(f"Bearer {key}").status_code == 401


def test_a_key_revoked_while_in_use_is_refused_within_the_cache_time(member, settings):
    # given: a key the ERP is using, so that this process remembers it
    settings.TIERFLOW_API_KEY_CACHE_SECONDS = 10
    api_key, key = APIKey.objects.create_key(name="erp")
    assert get_with(f"Bearer {key}").status_code == 200

    # when: an operator revokes it
    api_key.revoked = True
    api_key.save()

    # then: still accepted for at most the cache time, refused after it
    assert get_with(f"Bearer {key}").status_code == 200
    with time_machine.travel(timezone.now() + timedelta(seconds=11)):
        assert get_with(f"Bearer {key}").status_code == 401


def test_checking_a_key_costs_no_query_while_it_is_remembered(member):
    _, key = APIKey.objects.create_key(name="erp")
    get_with(f"Bearer {key}")
    with CaptureQueriesContext(connection) as queries:
        assert get_with(f"Bearer {key}").status_code == 200
    assert not [q for q in queries.captured_queries if "apikey" in q["sql"]]


def test_an_expired_key_is_a_401(member):
    # given
    _, key = APIKey.objects.create_key(
        name="erp", expiry_date=timezone.now() - timezone.timedelta(minutes=1)
    )

    # then
    assert get_with(f"Bearer {key}").status_code == 401


def test_a_key_is_stored_only_as_a_hash(member):
    api_key, key = APIKey.objects.create_key(name="erp")
    secret = key.partition(".")[2]
    assert secret not in api_key.hashed_key
    assert secret not in api_key.id
