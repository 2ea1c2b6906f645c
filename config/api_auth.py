"""Who is calling the API: an operator's key (`Authorization: Bearer <key>`) or a staff login.

Failed key attempts are counted per client address and, past a limit, refused with 429 before
the key is even looked at, so a guesser learns nothing while slowed down.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse
from ninja.errors import AuthenticationError, AuthorizationError, HttpError, Throttled
from ninja.security import APIKeyCookie, HttpBearer
from ninja.utils import check_csrf

from agents.selectors import api_key_authenticate

# Operators who may change records through the console may change them through the API too.
EDITOR_PERMISSIONS = (
    "agents.change_agent",
    "sessions_app.change_session",
    "memories.change_memory",
)


def client_address(request: HttpRequest) -> str:
    """The caller's address: REMOTE_ADDR, or the first hop before our own trusted proxies.

    X-Forwarded-For is read only when the request came from a proxy named in
    API_TRUSTED_PROXIES; otherwise anyone could forge it to dodge the failure limit.
    """
    remote = request.META.get("REMOTE_ADDR", "") or "unknown"
    trusted = settings.API_TRUSTED_PROXIES
    if remote in trusted:
        hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        for hop in reversed([h for h in hops if h]):
            if hop not in trusted:
                return hop
    return remote


def _failure_bucket(request: HttpRequest) -> tuple[str, float]:
    window = settings.API_AUTH_FAILURE_WINDOW
    now = time.time()
    slot = int(now // window)
    return f"api-auth-failures:{client_address(request)}:{slot}", window - (now % window)


def auth_retry_after(request: HttpRequest) -> int | None:
    """Seconds this client must wait before trying a key again, or None if it may try now."""
    key, remaining = _failure_bucket(request)
    if (cache.get(key) or 0) >= settings.API_AUTH_FAILURE_LIMIT:
        return max(1, math.ceil(remaining))
    return None


def auth_failure_record(request: HttpRequest) -> None:
    key, remaining = _failure_bucket(request)
    cache.add(key, 0, timeout=math.ceil(remaining) + 1)
    try:
        cache.incr(key)
    except ValueError:  # expired between add and incr: start the count again
        cache.set(key, 1, timeout=math.ceil(remaining) + 1)


class ApiKeyAuth(HttpBearer):
    """`Authorization: Bearer <key>`; a read key is refused (403) on operations that write."""

    def __init__(self, *, write: bool) -> None:
        self.write = write
        super().__init__()

    def __call__(self, request: HttpRequest) -> Any:
        header = request.headers.get("Authorization", "")
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer":
            return None
        wait = auth_retry_after(request)
        if wait is not None:
            raise Throttled(wait)
        return self.authenticate(request, token.strip())

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        key = api_key_authenticate(secret=token) if token.isprintable() else None
        if key is None:
            auth_failure_record(request)
            raise AuthenticationError(message="The API key is unknown, revoked or expired.")
        if self.write and not key.can_write:
            raise AuthorizationError(
                message="This API key may only read; writing needs a write key."
            )
        request.api_key = key  # type: ignore[attr-defined]
        return key.user


class StaffSessionAuth(APIKeyCookie):
    """The console login of an active staff user, with Django's CSRF check on writes."""

    param_name = settings.SESSION_COOKIE_NAME

    def __init__(self, *, write: bool) -> None:
        self.write = write
        super().__init__(csrf=True)

    def __call__(self, request: HttpRequest) -> Any:
        user = getattr(request, "user", None)
        # No login, no CSRF check: an anonymous call is a 401, not a CSRF 403.
        if user is None or not user.is_authenticated:
            return None
        if check_csrf(request):
            raise HttpError(403, "CSRF check failed: send the X-CSRFToken header.")
        return self.authenticate(request, request.COOKIES.get(self.param_name))

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        user = request.user
        if not (user.is_active and user.is_staff):
            return None
        if self.write and not (user.is_superuser or user.has_perms(EDITOR_PERMISSIONS)):
            raise AuthorizationError(message="Your account may only read.")
        return user


READ_AUTH = [ApiKeyAuth(write=False), StaffSessionAuth(write=False)]
WRITE_AUTH = [ApiKeyAuth(write=True), StaffSessionAuth(write=True)]


def docs_access(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """The schema and the docs page are for staff logged in or callers with a key, like the data:
    others get a login page (docs) or a 401 in the API's error shape (openapi.json)."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and user.is_active and user.is_staff:
            return view(request, *args, **kwargs)
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            wait = auth_retry_after(request)
            if wait is None:
                if token.isprintable() and api_key_authenticate(secret=token.strip()):
                    return view(request, *args, **kwargs)
                auth_failure_record(request)
            else:
                response = _error_json(429, f"Too many failed attempts; retry in {wait} seconds.")
                response["Retry-After"] = str(wait)
                return response
        if not request.path.endswith(".json"):
            return redirect_to_login(request.get_full_path())
        return _error_json(401, "Authenticate with `Authorization: Bearer <key>` or a staff login.")

    return wrapped


def _error_json(status: int, message: str) -> JsonResponse:
    code = {401: "unauthenticated", 429: "rate_limited"}[status]
    return JsonResponse({"error": {"code": code, "message": message, "fields": []}}, status=status)
