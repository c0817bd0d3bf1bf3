"""One signed JSON POST to a customer's server (API channel replies, outgoing webhooks): no redirects followed."""

from __future__ import annotations

import urllib.error
import urllib.request

# How much of a receiver's answer is read (enough for an id or an error message).
RESPONSE_READ_LIMIT = 64 * 1024


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # A redirected POST silently turns into a GET without the body; report the 3xx instead.
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def post_once(url: str, body: bytes, headers: dict[str, str], timeout: float) -> tuple[int, bytes]:
    """POST once without following redirects; return (status, start of the response body).

    Raises OSError (URLError, timeouts, refused connections) and http.client.HTTPException.
    """
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    opener = urllib.request.build_opener(_NoRedirects)
    try:
        with opener.open(request, timeout=timeout) as response:
            return response.status, response.read(RESPONSE_READ_LIMIT)
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read(RESPONSE_READ_LIMIT)
