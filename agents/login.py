"""How operators log in: who the login throttle counts, the page that says how long to wait,
and password reset by email, which is on only when email is set up (`EMAIL_HOST`)."""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path

from agents.api_auth import client_address
from agents.models import User


def login_username(request: HttpRequest, credentials: dict[str, Any] | None = None) -> str:
    """The account a login attempt names, case-folded as stored, so `Ann@X` and `ann@x` are
    counted as one account by the throttle."""
    field = settings.AXES_USERNAME_FORM_FIELD
    named = (credentials or {}).get(field) or getattr(request, "POST", {}).get(field)
    return User.objects.normalize_email(named)


def login_address(request: HttpRequest) -> str | None:
    """The address the throttle counts: the API's idea of the client (trusted proxies only),
    or None when that is no IP address (the throttle then counts the account alone)."""
    address = client_address(request)
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None


def login_locked_out(
    request: HttpRequest,
    original_response: HttpResponse | None = None,
    credentials: dict[str, Any] | None = None,
) -> HttpResponse:
    """Too many failed logins for this account or from this address: a styled 429 saying how
    long to wait. Each further attempt while locked starts the wait again."""
    seconds = int(settings.AXES_COOLOFF_TIME.total_seconds())
    response = render(
        request,
        "registration/locked_out.html",
        {"minutes": max(1, math.ceil(seconds / 60))},
        status=429,
    )
    response["Retry-After"] = str(seconds)
    return response


def password_reset_off(request: HttpRequest) -> HttpResponse:
    """Password reset by email while no email server is set up: say so, and who can help."""
    return render(request, "registration/password_reset_off.html", status=404)


def _by_email(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    # Decided per request, so that setting EMAIL_HOST (or a test) needs no other change.
    def dispatch(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not settings.PASSWORD_RESET_ENABLED:
            return password_reset_off(request)
        return view(request, *args, **kwargs)

    return dispatch


class PasswordResetView(auth_views.PasswordResetView):
    email_template_name = "registration/password_reset_email.txt"
    subject_template_name = "registration/password_reset_subject.txt"


# Mounted at /accounts/. Password changes happen in the admin (/admin/password_change/).
urlpatterns = [
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password_reset/", _by_email(PasswordResetView.as_view()), name="password_reset"),
    path(
        "password_reset/done/",
        _by_email(auth_views.PasswordResetDoneView.as_view()),
        name="password_reset_done",
    ),
    path(
        "reset/<uidb64>/<token>/",
        _by_email(auth_views.PasswordResetConfirmView.as_view()),
        name="password_reset_confirm",
    ),
    path(
        "reset/done/",
        _by_email(auth_views.PasswordResetCompleteView.as_view()),
        name="password_reset_complete",
    ),
]
