#!/usr/bin/env python
"""Logdeck's command-line entry point."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    if not any(arg.startswith("--settings") for arg in sys.argv):
        try:
            settings.INSTALLED_APPS  # noqa: B018 - load the settings now, to report them plainly
        except ImproperlyConfigured as exc:
            # A setting missing or malformed in the environment: the message says which and how.
            sys.exit(f"Logdeck cannot start: {exc}")
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
