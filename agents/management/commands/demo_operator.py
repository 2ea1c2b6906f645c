"""`manage.py demo_operator`: the demo login, created once and shown once."""

from __future__ import annotations

import secrets
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from agents.models import User

DEMO_EMAIL = "demo@logdeck.local"


class Command(BaseCommand):
    help = (
        "Create the demo operator (a superuser) with a random password and print the login "
        "once; later runs only say that it exists."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--email", default=DEMO_EMAIL, help=f"default {DEMO_EMAIL}")
        parser.add_argument(
            "--url", default="http://127.0.0.1:8000/", help="Where the console will be served."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        email = User.objects.normalize_email(options["email"])
        url = options["url"].rstrip("/") + "/"
        if not email or "@" not in email:
            raise CommandError(f"--email {options['email']!r} is not an email address.")
        password = secrets.token_urlsafe(12)
        with transaction.atomic():
            existing = User.objects.select_for_update().filter(email=email).first()
            if existing is None:
                User.objects.create_superuser(email, password, name="Demo operator")
        if existing is not None:
            if not existing.is_superuser:
                # Never promote an existing account (it may be an end user) behind anyone's back.
                raise CommandError(f"{email} exists but is not a superuser; pick another --email.")
            self.stdout.write(
                f"The demo operator {email} exists; its password was shown when it was created.\n"
                f"Forgot it? Set a new one with: python manage.py changepassword {email}"
            )
            return
        self.stdout.write(
            self.style.SUCCESS("Demo operator created. This password is shown only once:")
            + f"\n  console:  {url}\n  admin:    {url}admin/"
            f"\n  email:    {email}\n  password: {password}\n"
            f"Change it any time with: python manage.py changepassword {email}"
        )
