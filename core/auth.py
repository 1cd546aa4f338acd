"""API-key authentication for the ERP: `Authorization: Bearer <key>`.

Keys are djangorestframework-api-key's: shown once, stored as a hash, revocable in the admin.
That library only ships a permission class; this authentication class makes a missing or
bad key a 401 with a `WWW-Authenticate` challenge, as HTTP expects.

A key found valid is remembered for TIERFLOW_API_KEY_CACHE_SECONDS, so that an ERP posting
orders costs no query per request to check it: a revoked key is refused by every process
within that many seconds.
"""

import hashlib

from django.conf import settings
from django.core.cache import cache
from rest_framework import authentication, exceptions, permissions
from rest_framework.request import Request
from rest_framework_api_key.models import APIKey

KEYWORD = "Bearer"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[None, APIKey] | None:
        keyword, _, key = authentication.get_authorization_header(request).partition(b" ")
        if keyword.decode("latin-1").lower() != KEYWORD.lower():
            return None
        key = key.decode("latin-1").strip()
        if not key:
            raise exceptions.AuthenticationFailed("No API key given after 'Bearer'.")
        api_key = valid_key(key)
        if api_key.has_expired:
            raise exceptions.AuthenticationFailed("This API key has expired.")
        return None, api_key

    def authenticate_header(self, request: Request) -> str:
        return f'{KEYWORD} realm="api"'


def valid_key(key: str) -> APIKey:
    """The unrevoked API key `key` is, from the cache when it was checked lately."""
    cache_key = "tierflow:api-key:" + hashlib.sha256(key.encode()).hexdigest()
    api_key = cache.get(cache_key)
    if api_key is None:
        try:
            api_key = APIKey.objects.get_from_key(key)
        except APIKey.DoesNotExist:
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.") from None
        cache.set(cache_key, api_key, settings.TIERFLOW_API_KEY_CACHE_SECONDS)
    return api_key


class HasApiKey(permissions.BasePermission):
    def has_permission(self, request: Request, view: object) -> bool:
        return isinstance(request.auth, APIKey)
