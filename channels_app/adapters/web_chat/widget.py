"""`GET /widget/<key>.js`: the one script tag a tenant puts on its site.

The answer is a tiny loader, cacheable for a few minutes, that records the Omnidesk base URL and the inbox key
and loads the widget itself from the static files (content-hashed names in production, so whitenoise lets
browsers keep them for a year). Deactivating an inbox thus takes effect within `LOADER_MAX_AGE`.
"""

from __future__ import annotations

import json
import logging
from urllib.parse import urljoin

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.templatetags.static import static
from django.utils.cache import patch_cache_control
from django.views.decorators.http import require_safe

from channels_app.inbound import InboundRejected, inbox_for_hook
from channels_app.models import Channel

logger = logging.getLogger(__name__)

JS_CONTENT_TYPE = "application/javascript; charset=utf-8"
LOADER_MAX_AGE = 300
MISSING_MAX_AGE = 60
WIDGET_SCRIPT = "widget/omnidesk-chat.js"
WIDGET_STYLESHEET = "widget/omnidesk-chat.css"

# JSON is valid JavaScript except for U+2028/U+2029 in older engines; the others keep the literal inert even if
# the loader is ever pasted into an HTML page inside <script> (no "</script>", no "<!--").
_JS_ESCAPES = {
    ord("<"): "\\u003C",
    ord(">"): "\\u003E",
    ord("&"): "\\u0026",
    ord("\u2028"): "\\u2028",
    ord("\u2029"): "\\u2029",
}

LOADER = """/* Omnidesk web chat loader */
(function (w, d) {
  if (w.OmnideskChatBoot) return;
  w.OmnideskChatBoot = %(boot)s;
  var s = d.createElement("script");
  s.src = w.OmnideskChatBoot.script;
  s.async = true;
  s.charset = "utf-8";
  (d.head || d.documentElement).appendChild(s);
})(window, document);
"""


def js_literal(value) -> str:
    """`value` as a JavaScript literal that is safe wherever the script text ends up."""
    return json.dumps(value, ensure_ascii=False).translate(_JS_ESCAPES)


def _absolute_static(name: str) -> str:
    # STATIC_URL may already be absolute (a CDN); otherwise the files live on the Omnidesk origin.
    return urljoin(settings.PUBLIC_BASE_URL + "/", static(name))


def widget_loader(*, key: str) -> str:
    boot = {
        "base": settings.PUBLIC_BASE_URL,
        "key": key,
        "script": _absolute_static(WIDGET_SCRIPT),
        "css": _absolute_static(WIDGET_STYLESHEET),
    }
    return LOADER % {"boot": js_literal(boot)}


def _javascript(body: str, *, status: int = 200, max_age: int) -> HttpResponse:
    response = HttpResponse(body, status=status, content_type=JS_CONTENT_TYPE)
    patch_cache_control(response, public=True, max_age=max_age)
    return response


@require_safe
def widget_script(request: HttpRequest, key: str) -> HttpResponse:
    try:
        inbox = inbox_for_hook(key, [Channel.CHAT])
    except InboundRejected as exc:
        if exc.status == 404:
            # The key is not echoed: the comment is all a mistyped or retired tag shows in the site's console.
            return _javascript("/* Omnidesk: no active web chat inbox has this key; check the script tag. */\n",
                               status=404, max_age=MISSING_MAX_AGE)
        response = HttpResponse("/* Omnidesk: the chat is unavailable for a moment; it will load again. */\n",
                                status=exc.status, content_type=JS_CONTENT_TYPE)
        patch_cache_control(response, no_store=True)
        response["Retry-After"] = "30"
        return response
    return _javascript(widget_loader(key=inbox.key), max_age=LOADER_MAX_AGE)
