"""`manage.py create_api_key --user EMAIL --scope read|write [--name N] [--expires-in 30d]`."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from agents.models import ApiKeyScope, User
from agents.services import api_key_create
from config.errors import DomainError

DURATION = re.compile(r"^(\d{1,5})([smhdw])$")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> dt.timedelta:
    """`90m`, `12h`, `30d`, `8w` as a timedelta."""
    match = DURATION.match(text.strip())
    if not match or int(match.group(1)) == 0:
        raise CommandError(f"--expires-in {text!r}: use a number and a unit, like 90m, 12h or 30d.")
    return dt.timedelta(**{UNITS[match.group(2)]: int(match.group(1))})


class Command(BaseCommand):
    help = "Issue an API key for an operator and print its secret (shown this once only)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--user", required=True, help="The operator's email.")
        parser.add_argument("--scope", required=True, choices=ApiKeyScope.values)
        parser.add_argument("--name", default="", help="What the key is for.")
        parser.add_argument("--expires-in", default="", help="Lifetime, e.g. 30d (default: none).")

    def handle(self, *args: Any, **options: Any) -> None:
        email = User.objects.normalize_email(options["user"])
        user = User.objects.filter(email=email).first()
        if user is None:
            raise CommandError(f"No user {email!r}.")
        expires_at = None
        if options["expires_in"]:
            expires_at = timezone.now() + parse_duration(options["expires_in"])
        try:
            issued = api_key_create(
                user=user, scope=options["scope"], name=options["name"], expires_at=expires_at
            )
        except DomainError as exc:
            raise CommandError(exc.message) from None
        key = issued.api_key
        until = f", expires {key.expires_at:%Y-%m-%d %H:%M} UTC" if key.expires_at else ""
        self.stderr.write(
            f"API key {key.prefix}… ({key.scope}) for {user.email}{until}. "
            "The secret below is shown once; store it now."
        )
        self.stdout.write(issued.secret)
