"""The bearer-token check both HTTP services share (membership service, `stacklens serve`)."""

from __future__ import annotations

import hmac


def bearer_token_matches(authorization: str, token: str) -> bool:
    """Whether an ``Authorization`` header value is ``Bearer <token>``.

    Compared as bytes, in constant time: the header as it came on the wire (ASGI servers hand
    header values over decoded as Latin-1, which gives back the exact bytes) against the token in
    UTF-8, so a non-ASCII token matches a client that sends it in UTF-8, and nothing raises.
    """
    scheme, _, given = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return False
    raw = given.strip()
    try:
        sent = raw.encode("latin-1")
    except UnicodeEncodeError:  # not from an ASGI server: a str the caller built itself
        sent = raw.encode("utf-8")
    return hmac.compare_digest(sent, token.encode("utf-8"))
