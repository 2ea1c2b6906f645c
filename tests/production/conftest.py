"""The API's actors, shared with tests/api (keys made through the same fixtures)."""

from tests.api.conftest import ApiClient, anon_api, api, write_secret  # noqa: F401
