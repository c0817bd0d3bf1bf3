from __future__ import annotations

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "omnidesk.settings")
# Django must be set up before anything imports models (consumers do).
django.setup(set_prefix=False)

from omnidesk.lib.asgi_handler import SyncChainASGIHandler  # noqa: E402

django_asgi_app = SyncChainASGIHandler()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from channels_app.adapters.web_chat.routing import CHAT_PATH_PREFIX, chat_websocket_urlpatterns  # noqa: E402
from omnidesk.routing import websocket_urlpatterns  # noqa: E402

# Signed-in pages (workspace, dashboards): sessions, and only pages of our own hosts may open them.
staff_websockets = AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))
# Web-chat visitors: no cookies, opened from the tenants' sites; each inbox's allowed origins are checked
# by the consumer, so these must not go through the AllowedHosts check above.
chat_websockets = URLRouter(chat_websocket_urlpatterns)


async def websocket_application(scope, receive, send):
    if scope["path"].startswith(CHAT_PATH_PREFIX):
        return await chat_websockets(scope, receive, send)
    return await staff_websockets(scope, receive, send)


application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": websocket_application,
    }
)
