"""The WSGI application gunicorn serves: the API (under /api/) through a handler with only
the middleware it uses, everything else (the admin, static files, the health check)
through the full stack. The API authenticates by key, keeps no session, sets no cookie
and answers JSON, so sessions, CSRF, auth, messages, locale and clickjacking middleware
would only cost it time on every order."""

import os

from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

site = get_wsgi_application()


class ApiHandler(WSGIHandler):
    """Django's handler, loading API_MIDDLEWARE instead of MIDDLEWARE (at start-up)."""

    def load_middleware(self, is_async: bool = False) -> None:
        full, settings.MIDDLEWARE = settings.MIDDLEWARE, settings.API_MIDDLEWARE
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = full


api = ApiHandler()


def application(environ, start_response):
    handler = api if environ.get("PATH_INFO", "").startswith("/api/") else site
    return handler(environ, start_response)
