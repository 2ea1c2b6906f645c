"""Authentication and authorisation, walked over every operation of the API."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command
from django.test import Client, override_settings
from django.utils import timezone

from agents.models import ApiKey, User
from agents.services import api_key_authenticate, api_key_create
from tests.api.conftest import ApiClient, assert_error
from tests.api.operations import LABELS, World, call, make_world, operation

pytestmark = pytest.mark.django_db
WRITES = [label for label in LABELS if not label.startswith("GET ")]


@pytest.fixture
def world(db: None) -> World:
    return make_world()


@pytest.mark.parametrize("label", LABELS)
def test_it_serves_every_operation_to_a_write_key(world: World, api: ApiClient, label: str):
    op = operation(world, label)
    response = call(api, op)
    assert response.status_code == op.ok, response.content


@pytest.mark.parametrize("label", LABELS)
def test_it_returns_401_for_anon_requests(world: World, anon_api: ApiClient, label: str):
    error = assert_error(call(anon_api, operation(world, label)), 401)
    assert error["code"] == "unauthenticated"


@pytest.mark.parametrize("label", LABELS)
def test_it_returns_401_for_revoked_and_expired_keys(
    world: World, revoked_secret: str, expired_secret: str, label: str
):
    for secret in (revoked_secret, expired_secret, "ldk_00000000_not-a-key"):
        assert_error(call(ApiClient(secret), operation(world, label)), 401)


def test_it_returns_401_for_the_key_of_a_deactivated_operator(
    world: World, operator: User, write_secret: str
):
    api = ApiClient(write_secret)
    assert api.get("/agents").status_code == 200
    User.objects.filter(pk=operator.pk).update(is_active=False)
    assert_error(api.get("/agents"), 401)


def test_it_accepts_a_key_until_it_expires(world: World, operator: User):
    soon = timezone.now() + dt.timedelta(minutes=5)
    issued = api_key_create(user=operator, scope="read", expires_at=soon)
    api = ApiClient(issued.secret)
    assert api.get("/agents").status_code == 200
    ApiKey.objects.filter(pk=issued.api_key.pk).update(expires_at=timezone.now())
    assert_error(api.get("/agents"), 401)


@pytest.mark.parametrize("label", WRITES)
def test_it_returns_403_when_a_read_key_writes(world: World, read_api: ApiClient, label: str):
    error = assert_error(call(read_api, operation(world, label)), 403)
    assert "write" in error["message"]


@pytest.mark.parametrize("label", [label for label in LABELS if label.startswith("GET ")])
def test_it_lets_a_read_key_read(world: World, read_api: ApiClient, label: str):
    op = operation(world, label)
    assert call(read_api, op).status_code == op.ok


def test_it_lets_staff_use_their_login_with_csrf_enforced(world: World, operator: User):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(operator)
    staff = ApiClient(client=browser)
    assert staff.get("/agents").status_code == 200
    # A write without the CSRF token is refused, with it accepted.
    assert_error(staff.post("/agents", {"name": "from-docs"}), 403)
    token = "k" * 32  # a CSRF secret as the cookie, the same value in the header
    browser.cookies["csrftoken"] = token
    response = staff.post("/agents", {"name": "from-docs"}, headers={"X-CSRFToken": token})
    assert response.status_code == 201


def test_it_lets_a_viewer_login_read_but_not_write(world: World, viewer_client: Client):
    staff = ApiClient(client=viewer_client)
    assert staff.get("/sessions").status_code == 200
    assert_error(staff.post("/agents", {"name": "nope"}), 403)


def test_it_refuses_the_login_of_an_end_user(world: World):
    browser = Client()
    browser.force_login(world.user)
    assert_error(ApiClient(client=browser).get("/sessions"), 401)


@override_settings(API_AUTH_FAILURE_LIMIT=3, API_AUTH_FAILURE_WINDOW=60)
def test_it_slows_down_repeated_failed_keys_but_never_a_valid_one(world: World, write_secret: str):
    guesser = ApiClient("ldk_00000000_guess")
    for _ in range(3):
        assert_error(guesser.get("/agents"), 401)
    throttled = guesser.get("/agents")
    assert_error(throttled, 429)
    assert 1 <= int(throttled["Retry-After"]) <= 60
    # A valid key is never throttled for the failures of others at the same address.
    assert ApiClient(write_secret).get("/agents").status_code == 200
    # A forged X-Forwarded-For does not make a new client.
    forged = guesser.get("/agents", headers={"X-Forwarded-For": "203.0.113.9"})
    assert_error(forged, 429)
    # Another address is not affected.
    other = ApiClient(write_secret).get("/agents", REMOTE_ADDR="198.51.100.7")
    assert other.status_code == 200


@override_settings(
    API_AUTH_FAILURE_LIMIT=2, API_AUTH_FAILURE_WINDOW=60, API_TRUSTED_PROXIES=["10.0.0.1"]
)
def test_it_believes_x_forwarded_for_only_from_a_trusted_proxy(world: World):
    guesser = ApiClient("ldk_00000000_guess")
    behind_proxy = {"REMOTE_ADDR": "10.0.0.1"}
    for _ in range(2):
        guesser.get("/agents", headers={"X-Forwarded-For": "203.0.113.9"}, **behind_proxy)
    assert_error(
        guesser.get("/agents", headers={"X-Forwarded-For": "203.0.113.9"}, **behind_proxy), 429
    )
    # Another client behind the same proxy is its own client.
    assert_error(
        guesser.get("/agents", headers={"X-Forwarded-For": "203.0.113.10"}, **behind_proxy), 401
    )


def test_it_keeps_last_used_at_without_a_write_per_request(
    world: World, write_secret: str, django_assert_num_queries
):
    api = ApiClient(write_secret)
    ApiKey.objects.filter(name="runtime").update(last_used_at=None)
    api.get("/agents")
    key = ApiKey.objects.get(name="runtime")
    first = key.last_used_at
    assert first is not None
    with django_assert_num_queries(2):
        # 1: the key by its hash, 2: the agents page. No UPDATE of last_used_at.
        api.get("/agents")
    key.refresh_from_db()
    assert key.last_used_at == first


def test_it_creates_a_key_from_the_command_line(operator: User, capsys):
    call_command("create_api_key", user=operator.email.upper(), scope="read", expires_in="30d")
    secret = capsys.readouterr().out.strip()
    key = ApiKey.objects.get()
    assert secret.startswith(key.prefix) and key.hashed_secret not in secret
    assert key.scope == "read"
    assert key.expires_at - timezone.now() > dt.timedelta(days=29)
    assert ApiClient(secret).get("/agents").status_code == 200
    assert_error(ApiClient(secret).post("/agents", {"name": "x"}), 403)


def test_it_refuses_a_key_for_an_end_user_on_the_command_line(end_user: User):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="operators"):
        call_command("create_api_key", user=end_user.email, scope="write")


def test_it_finds_a_key_and_its_operator_in_one_query(
    write_secret: str, operator: User, django_assert_num_queries
):
    ApiKey.objects.update(last_used_at=timezone.now())  # no bookkeeping write in this request
    with django_assert_num_queries(1):
        key = api_key_authenticate(secret=write_secret)
    assert key is not None and key.name == "runtime" and key.can_write
    assert key.user.pk == operator.pk and key.user.is_active
    with django_assert_num_queries(1):  # the rest of the operator loads only when asked for
        assert key.user.email == operator.email
    assert api_key_authenticate(secret=write_secret + "x") is None
