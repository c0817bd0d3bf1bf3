"""How the OpenAPI schema describes the API's token authentication (imported with the API views).

Apart from `omnidesk.lib.api_defaults`: drf-spectacular's extensions load DRF's settings, which import that module.
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class TokenScheme(OpenApiAuthenticationExtension):
    target_class = "omnidesk.lib.api_defaults.TokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "Authorization",
                "description": "`Token <key>`: create a key in the workspace (Profile → API tokens) or in admin."}
