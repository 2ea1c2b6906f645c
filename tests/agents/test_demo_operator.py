import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from agents.models import User
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _run(*args: str) -> str:
    out = StringIO()
    call_command("demo_operator", *args, stdout=out)
    return out.getvalue()


def test_it_creates_the_demo_operator_once_and_prints_a_working_login():
    output = _run("--url", "http://127.0.0.1:8123/")

    user = User.objects.get(email="demo@logdeck.local")
    assert user.is_superuser and user.is_staff
    password = re.search(r"password: (\S+)", output)[1]
    assert user.check_password(password)
    assert len(password) >= 12
    assert "http://127.0.0.1:8123/" in output
    assert "demo@logdeck.local" in output


def test_it_never_prints_a_password_again():
    first = _run()
    password = re.search(r"password: (\S+)", first)[1]

    second = _run()

    assert password not in second
    assert "password:" not in second
    assert "exists" in second
    assert "manage.py changepassword demo@logdeck.local" in second
    assert User.objects.filter(email="demo@logdeck.local").count() == 1
    assert User.objects.get(email="demo@logdeck.local").check_password(password)


def test_it_never_promotes_an_existing_end_user():
    UserFactory(email="someone@example.com")

    with pytest.raises(CommandError, match="not a superuser"):
        _run("--email", "Someone@Example.com")

    assert not User.objects.get(email="someone@example.com").is_staff
