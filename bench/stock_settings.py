"""Logdeck's settings with Django's own serializers: the "stock dumpdata" the benchmark compares."""

from config.settings import *  # noqa: F403

SERIALIZATION_MODULES: dict[str, str] = {}
