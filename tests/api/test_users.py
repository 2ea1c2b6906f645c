"""End users: upsert by email, get, list, change, delete; operators stay out of reach."""

from __future__ import annotations

import pytest

from agents.models import User
from sessions_app.models import Session
from tests.api.conftest import ApiClient, assert_error
from tests.factories import SessionFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_it_upserts_an_end_user_by_email(api: ApiClient):
    created = api.post("/users", {"email": "Ada@Example.com", "name": "Ada"})
    assert created.status_code == 201
    assert created.json()["email"] == "ada@example.com"
    again = api.post("/users", {"email": "ada@example.com", "phone_number": "+15550001"})
    assert again.status_code == 200
    assert again.json()["name"] == "Ada" and again.json()["phone_number"] == "+15550001"
    user = User.objects.get(email="ada@example.com")
    assert not user.has_usable_password() and not user.is_staff


def test_it_never_sets_staff_flags_or_passwords(api: ApiClient):
    for field in ("is_staff", "is_superuser", "password"):
        assert_error(api.post("/users", {"email": "x@example.com", field: True}), 422, field)
    assert not User.objects.filter(email="x@example.com").exists()


def test_it_keeps_operators_out_of_reach(api: ApiClient, operator: User):
    assert_error(api.get(f"/users/{operator.pk}"), 404)
    assert_error(api.get(f"/users/{operator.email}"), 404)
    assert_error(api.patch(f"/users/{operator.pk}", {"name": "x"}), 404)
    assert_error(api.delete(f"/users/{operator.pk}"), 404)
    refused = assert_error(api.post("/users", {"email": operator.email, "name": "x"}), 409)
    # The answer says nothing of an operator: the same as for an end user's taken address.
    assert "operator" not in refused["message"].lower()
    assert operator.email not in str(api.get("/users").json())
    operator.refresh_from_db()
    assert operator.is_staff and operator.name != "x"


def test_it_gets_lists_and_filters_end_users(api: ApiClient, django_assert_num_queries):
    users = [UserFactory() for _ in range(4)]
    assert api.get(f"/users/{users[0].email.upper()}").json()["id"] == users[0].pk
    with django_assert_num_queries(2):  # 1: the key, 2: one page of users
        page = api.get("/users", {"limit": 3}).json()
    assert len(page["items"]) == 3 and page["next_cursor"]
    rest = api.get("/users", {"limit": 3, "cursor": page["next_cursor"]}).json()
    seen = [u["id"] for u in page["items"] + rest["items"]]
    assert sorted(seen) == sorted(u.pk for u in users)
    only = api.get("/users", {"email": users[1].email}).json()["items"]
    assert [u["id"] for u in only] == [users[1].pk]
    assert_error(api.get("/users", {"email": "not-an-email"}), 422, "email")


def test_it_changes_an_end_user(api: ApiClient):
    user = UserFactory(email="old@example.com")
    response = api.patch(f"/users/{user.pk}", {"email": "new@example.com", "user_data": {"a": 1}})
    assert response.json()["email"] == "new@example.com"
    assert response.json()["user_data"] == {"a": 1}
    assert_error(api.patch(f"/users/{user.pk}", {"email": "nope"}), 422, "email")
    assert_error(api.patch("/users/999999", {"name": "x"}), 404)


def test_it_deletes_an_end_user_and_keeps_their_sessions(api: ApiClient):
    session = SessionFactory()
    response = api.delete(f"/users/{session.user.email}")
    assert response.status_code == 204
    assert Session.objects.get().user is None
    assert_error(api.delete(f"/users/{session.user.email}"), 404)
