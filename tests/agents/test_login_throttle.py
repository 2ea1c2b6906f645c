"""Logins are throttled by account and by address (django-axes, counted in the database), on
the console's login form and the admin's; a superuser unlocks from the admin or a command."""

from __future__ import annotations

import pytest
from axes.models import AccessAttempt
from django.core.management import call_command
from django.test import Client

from agents.models import User
from tests.factories import OperatorFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"
FORMS = ("/accounts/login/", "/admin/login/")


def _login(client: Client, form: str, email: str, password: str, address: str = "192.0.2.1"):
    return client.post(form, {"username": email, "password": password}, REMOTE_ADDR=address)


@pytest.fixture
def ops(db: None) -> User:
    return OperatorFactory(email="ops@logdeck.test", groups=["editor"])


@pytest.mark.parametrize("form", FORMS)
def test_it_locks_an_account_after_five_wrong_passwords_and_says_how_long(
    form: str, ops: User
) -> None:
    client = Client()
    for _ in range(4):
        assert _login(client, form, ops.email, "wrong").status_code == 200
    locked = _login(client, form, ops.email, "wrong")
    assert locked.status_code == 429
    page = locked.content.decode()
    assert "Too many failed logins" in page and "15 minutes" in page
    assert locked["Retry-After"] == "900"
    # The right password now waits too, from this address and from any other.
    assert _login(client, form, ops.email, PASSWORD).status_code == 429
    assert _login(Client(), form, "OPS@logdeck.test", PASSWORD, "198.51.100.9").status_code == 429


def test_it_locks_an_address_that_tries_many_accounts(ops: User) -> None:
    client = Client()
    for n in range(5):
        _login(client, FORMS[0], f"someone{n}@logdeck.test", "wrong", "203.0.113.5")
    assert _login(client, FORMS[0], ops.email, PASSWORD, "203.0.113.5").status_code == 429
    # The account itself is not locked: from another address it logs in.
    assert _login(Client(), FORMS[0], ops.email, PASSWORD, "203.0.113.6").status_code == 302


def test_it_forgets_failures_after_a_good_login(ops: User) -> None:
    for _ in range(4):
        _login(Client(), FORMS[0], ops.email, "wrong")
    assert _login(Client(), FORMS[0], ops.email, PASSWORD).status_code == 302
    for _ in range(4):
        assert _login(Client(), FORMS[0], ops.email, "wrong").status_code == 200


def test_it_lets_a_superuser_unlock_from_the_admin_and_a_command(ops: User) -> None:
    for _ in range(5):
        _login(Client(), FORMS[0], ops.email, "wrong")
    assert _login(Client(), FORMS[0], ops.email, PASSWORD).status_code == 429

    root = OperatorFactory(email="root@logdeck.test", is_superuser=True)
    admin = Client()
    admin.force_login(root)
    attempts = admin.get("/admin/axes/accessattempt/")
    assert attempts.status_code == 200 and ops.email in attempts.content.decode()
    ids = list(AccessAttempt.objects.values_list("pk", flat=True))
    admin.post(
        "/admin/axes/accessattempt/",
        {"action": "delete_selected", "_selected_action": ids, "post": "yes"},
    )
    assert _login(Client(), FORMS[0], ops.email, PASSWORD).status_code == 302

    for _ in range(5):
        _login(Client(), FORMS[0], ops.email, "wrong")
    assert _login(Client(), FORMS[0], ops.email, PASSWORD).status_code == 429
    call_command("axes_reset_username", ops.email)
    assert _login(Client(), FORMS[0], ops.email, PASSWORD).status_code == 302


def test_it_lets_no_editor_unlock_anyone(ops: User) -> None:
    editor = Client()
    editor.force_login(ops)
    assert editor.get("/admin/axes/accessattempt/").status_code == 403


def test_it_says_password_reset_is_off_without_email(client: Client, ops: User) -> None:
    response = client.get("/accounts/password_reset/")
    assert response.status_code == 404
    page = response.content.decode()
    assert "Password reset is off" in page and "Django" not in page
    posted = client.post("/accounts/password_reset/", {"email": ops.email})
    assert posted.status_code == 404  # nothing pretends to have sent anything


def test_it_sends_a_styled_reset_link_when_email_is_set_up(
    client: Client, ops: User, settings, mailoutbox
) -> None:
    settings.PASSWORD_RESET_ENABLED = True
    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
    form = client.get("/accounts/password_reset/")
    assert form.status_code == 200 and b"Reset your password" in form.content
    assert b"Django" not in form.content
    done = client.post("/accounts/password_reset/", {"email": ops.email}, follow=True)
    assert b"Check your email" in done.content
    assert len(mailoutbox) == 1 and "/accounts/reset/" in mailoutbox[0].body
