"""Who is calling the API: an operator's key (`Authorization: Bearer <key>`) or a staff login.

Either way the caller may do what the operator's role allows now (`agents.models.Role`), and a
key no more than its scope. Failed key attempts are counted per client address in the
database, and past a limit refused with 429; a valid key is never refused for others' failures.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, JsonResponse
from ninja.errors import AuthenticationError, AuthorizationError, HttpError, Throttled
from ninja.security import APIKeyCookie, HttpBearer
from ninja.utils import check_csrf

from agents.models import ApiKey, Role
from agents.selectors import api_key_failure_wait
from agents.services import api_key_authenticate, api_key_failure_record


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


def key_attempt(request: HttpRequest, token: str) -> ApiKey:
    """The usable key for `token`, or an error: 429 while the caller's address has failed too
    often, 401 otherwise. A valid key always passes, however often others at the same address
    failed (a stale key in one worker behind a proxy must not stop the rest)."""
    key = api_key_authenticate(secret=token) if token.isprintable() else None
    if key is not None:
        return key
    address = client_address(request)
    wait = api_key_failure_wait(address=address)
    if wait is not None:
        raise Throttled(wait)
    api_key_failure_record(address=address)
    raise AuthenticationError(message="The API key is unknown, revoked or expired.")


class ApiKeyAuth(HttpBearer):
    """`Authorization: Bearer <key>`. A key may do the lesser of its scope and its owner's role
    now: reading needs a viewer, writing an editor (403 otherwise)."""

    def __init__(self, *, write: bool) -> None:
        self.write = write
        super().__init__()

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        key = key_attempt(request, token.strip())
        allowed = key.allows(key.owner_role)
        if allowed == Role.NONE:
            raise AuthorizationError(
                message="This API key's owner no longer has a role in Logdeck; ask a superuser."
            )
        if self.write and allowed < Role.EDITOR:
            message = (
                "This API key may only read; writing needs a write key."
                if not key.can_write
                else "This API key's owner is a viewer, so the key may only read."
            )
            raise AuthorizationError(message=message)
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
        role = user.role
        if role == Role.NONE:
            raise AuthorizationError(message="Your account has no role in Logdeck.")
        if self.write and role < Role.EDITOR:
            raise AuthorizationError(message="Your account may only read.")
        return user


READ_AUTH = [ApiKeyAuth(write=False), StaffSessionAuth(write=False)]
WRITE_AUTH = [ApiKeyAuth(write=True), StaffSessionAuth(write=True)]


def docs_access(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """The schema and the docs page are for those who may read the data, logged in or with a
    key: others get a login page (docs) or a 401 in the API's error shape (openapi.json)."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and user.role != Role.NONE:
            return view(request, *args, **kwargs)
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            try:
                key = key_attempt(request, token.strip())
            except Throttled as exc:
                wait = max(1, math.ceil(exc.wait or 1))
                response = _error_json(429, f"Too many failed attempts; retry in {wait} seconds.")
                response["Retry-After"] = str(wait)
                return response
            except AuthenticationError:
                key = None
            if key is not None and key.allows(key.owner_role) != Role.NONE:
                return view(request, *args, **kwargs)
        if not request.path.endswith(".json"):
            return redirect_to_login(request.get_full_path())
        return _error_json(401, "Authenticate with `Authorization: Bearer <key>` or a staff login.")

    return wrapped


def _error_json(status: int, message: str) -> JsonResponse:
    code = {401: "unauthenticated", 429: "rate_limited"}[status]
    return JsonResponse({"error": {"code": code, "message": message, "fields": []}}, status=status)
