"""Read the expiry of a connect token without trusting or echoing it.

The API documents ``expires_at`` next to each token; the token's ``exp`` claim is read only when
that field is missing. The token is decoded without signature verification, because the
provider never authorizes anything with it, and errors never include the token.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import jwt

from airflow_provider_dynamiq.exceptions import DynamiqResponseError

#: Allowed difference between this machine's clock and the service's.
CLOCK_SKEW = timedelta(seconds=30)


def token_expiry(token: str, *, user_id: str) -> datetime:
    """Return the ``exp`` claim of a connect token as an aware UTC datetime.

    :raises DynamiqResponseError: when the token is not a JWT or has no numeric ``exp``.
    """
    try:
        claims = jwt.decode(
            token,
            options={"verify_signature": False, "verify_exp": False},
            algorithms=["RS256", "HS256", "ES256"],
        )
    except jwt.PyJWTError as error:
        raise DynamiqResponseError(
            f"The connect token for user {user_id!r} has no expires_at and could not be decoded as a "
            f"JWT ({type(error).__name__}).",
            status_code=200,
        ) from None
    expiry = claims.get("exp")
    if not isinstance(expiry, (int, float)) or isinstance(expiry, bool):
        raise DynamiqResponseError(
            f"The connect token for user {user_id!r} has neither expires_at nor a numeric 'exp' claim.",
            status_code=200,
        )
    return datetime.fromtimestamp(expiry, tz=timezone.utc)


def is_expired(expires_at: datetime, *, now: datetime | None = None) -> bool:
    """Return whether ``expires_at`` has passed, allowing :data:`CLOCK_SKEW` of clock difference."""
    current = now or datetime.now(timezone.utc)
    return current > expires_at + CLOCK_SKEW
