"""The admin carries the product's name, not Django's, in every language."""

import pytest
from django.test import Client


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("language", "index_title", "djangos_header"),
    [
        ("en", "Site administration", "Django administration"),
        ("zh-hans", "站点管理", "Django 管理"),
    ],
)
def test_the_admin_is_headed_tierflow(admin_client, language, index_title, djangos_header):
    # when
    index = admin_client.get("/admin/", HTTP_ACCEPT_LANGUAGE=language).content.decode()
    login = Client().get("/admin/login/", HTTP_ACCEPT_LANGUAGE=language).content.decode()

    # then
    for page in (index, login):
        assert '<div id="site-name"><a href="/admin/">tierflow</a></div>' in page
        assert djangos_header not in page
    assert f"<title>{index_title} | tierflow</title>" in index
