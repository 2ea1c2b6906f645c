"""Production settings for a server the tests start in another process (tests/production/).

As in tests/conftest.py: static files are served from their sources, so the server needs no
collectstatic (the CI step that starts `make serve` covers the collected, hashed files)."""

from config.settings import *  # noqa: F403

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
