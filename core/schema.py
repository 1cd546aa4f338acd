"""How the API key appears in the OpenAPI schema (drf-spectacular finds extensions by
subclassing, so importing this module registers it)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "core.auth.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema) -> dict:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key from `python manage.py create_api_key NAME`.",
        }
