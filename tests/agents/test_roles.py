"""The role model as one table: who may do what to operators and keys in the admin, and what
each one's read and write keys may do on every API operation.

Actors: anonymous, viewer, editor, superuser, a deactivated operator (was an editor), a demoted
operator (was an editor; staff flag and group taken away), and each one's read and write keys.
The keys are made as rows, past `api_key_create`, as keys issued before a demotion (or before
the rule) would be: what they may do is decided on each request, not when they were made.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from django.contrib.auth.models import Group
from django.db import transaction
from django.test import Client

from agents.models import ApiKey, ApiKeyScope, Role, User, api_key_hash
from tests.api.conftest import ApiClient
from tests.api.operations import LABELS, World, call, make_world, operation
from tests.factories import OperatorFactory, UserFactory

pytestmark = pytest.mark.django_db

ACTORS = ("viewer", "editor", "superuser", "deactivated", "demoted")


@dataclass
class Cast:
    people: dict[str, User]
    secrets: dict[tuple[str, str], str]  # (actor, scope) -> secret

    def client(self, actor: str) -> Client:
        client = Client()
        if actor != "anonymous":
            client.force_login(self.people[actor])
        return client


def _key(user: User, scope: str) -> str:
    prefix, secret = ApiKey.generate_secret()
    ApiKey.objects.create(user=user, prefix=prefix, hashed_secret=api_key_hash(secret), scope=scope)
    return secret


@pytest.fixture
def cast(db: None) -> Cast:
    people = {
        "viewer": OperatorFactory(email="viewer@logdeck.test", groups=["viewer"]),
        "editor": OperatorFactory(email="editor@logdeck.test", groups=["editor"]),
        "superuser": OperatorFactory(email="root@logdeck.test", is_superuser=True),
        "deactivated": OperatorFactory(email="gone@logdeck.test", groups=["editor"]),
        "demoted": OperatorFactory(email="demoted@logdeck.test", groups=["editor"]),
    }
    secrets = {
        (actor, scope): _key(people[actor], scope) for actor in people for scope in ApiKeyScope
    }
    User.objects.filter(pk=people["deactivated"].pk).update(is_active=False)
    people["demoted"].is_staff = False
    people["demoted"].save(update_fields=["is_staff"])
    people["demoted"].groups.clear()
    for person in people.values():
        person.refresh_from_db()
    return Cast(people, secrets)


# --- the API: every operation, every key -----------------------------------------------------


def expected_api_status(actor: str, scope: str, op_ok: int, writes: bool) -> int:
    """What the API answers `actor`'s `scope` key on an operation answering `op_ok` when allowed."""
    if actor == "anonymous":
        return 401
    if actor == "deactivated":
        return 401  # the key is unusable: its owner is not active
    if actor == "demoted":
        return 403  # a valid key whose owner has no role any more
    if not writes:
        return op_ok
    can_write = scope == ApiKeyScope.WRITE and actor in ("editor", "superuser")
    return op_ok if can_write else 403


@pytest.mark.parametrize("label", LABELS)
def test_it_answers_every_key_on_every_operation_as_its_owners_role_allows(
    cast: Cast, label: str
) -> None:
    world: World = make_world()
    op = operation(world, label)
    keyholders = [("anonymous", "-"), *((a, s.value) for a in ACTORS for s in ApiKeyScope)]
    wrong = []
    for actor, scope in keyholders:
        api = ApiClient(cast.secrets.get((actor, scope)))
        with transaction.atomic():  # each caller meets the same world
            status = call(api, op).status_code
            transaction.set_rollback(True)
        expected = expected_api_status(actor, scope, op.ok, op.writes)
        if status != expected:
            wrong.append(f"{actor} {scope} key: {status}, expected {expected}")
    assert not wrong, f"{op}: " + "; ".join(wrong)


def test_it_stops_a_key_at_once_when_its_owner_is_demoted_or_deactivated(cast: Cast) -> None:
    make_world()
    editor = cast.people["editor"]
    api = ApiClient(cast.secrets[("editor", "write")])
    assert api.post("/agents", {"name": "before"}).status_code == 201
    editor.groups.set([Group.objects.get(name="viewer")])  # demoted to viewer: reads only
    assert api.get("/agents").status_code == 200
    assert api.post("/agents", {"name": "after"}).status_code == 403
    editor.groups.clear()  # no role at all
    assert api.get("/agents").status_code == 403
    editor.groups.set([Group.objects.get(name="editor")])
    assert api.post("/agents", {"name": "again"}).status_code == 201
    User.objects.filter(pk=editor.pk).update(is_active=False)
    assert api.get("/agents").status_code == 401


def test_it_reads_the_owners_role_in_the_one_key_query(cast: Cast, django_assert_num_queries):
    make_world()
    api = ApiClient(cast.secrets[("viewer", "write")])
    ApiKey.objects.update(last_used_at=None)
    api.get("/stats")  # the first use writes last_used_at; the next ones do not
    with django_assert_num_queries(1):  # 1: the key, its owner's flags and permissions
        assert api.post("/agents", {"name": "x"}).status_code == 403


def test_it_agrees_with_the_users_own_role(cast: Cast) -> None:
    from agents.services import api_key_authenticate

    for (actor, _scope), secret in cast.secrets.items():
        key = api_key_authenticate(secret=secret)
        if actor == "deactivated":
            assert key is None
            continue
        assert key.owner_role == cast.people[actor].role, actor
    assert cast.people["demoted"].role == Role.NONE


# --- the admin: operators and keys ----------------------------------------------------------


def _user_change_post(user: User, **changes: object) -> dict[str, object]:
    data: dict[str, object] = {
        "email": user.email,
        "name": user.name,
        "phone_number": user.phone_number,
        "user_data": "{}",
        "is_active": "on" if user.is_active else "",
        "is_staff": "on" if user.is_staff else "",
        "is_superuser": "on" if user.is_superuser else "",
        "groups": [g.pk for g in user.groups.all()],
        "api_keys-TOTAL_FORMS": "0",
        "api_keys-INITIAL_FORMS": "0",
        "_save": "Save",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v != ""}


ADMIN_ACTORS = ("anonymous", "viewer", "editor", "superuser", "deactivated", "demoted")
# Admin answers: 302 "login" for anyone the admin does not let in, 302 "gone" for a record
# the user may not see (the admin's "no such record" redirect), 403 refused, 200/302 done.
LOGIN, GONE, REFUSED = "login", "gone", 403


def _admin_answer(response) -> int | str:
    if response.status_code == 302 and "/admin/login/" in response["Location"]:
        return LOGIN
    if response.status_code == 302 and response["Location"].rstrip("/").endswith("/admin"):
        return GONE
    return response.status_code


def _outside(actor: str) -> bool:
    return actor in ("anonymous", "deactivated", "demoted")


def test_it_lets_only_a_superuser_raise_anyone_to_superuser(cast: Cast) -> None:
    for actor in ADMIN_ACTORS:
        target = cast.people["editor"] if actor in ("anonymous", "superuser") else None
        target = target or cast.people[actor]
        with transaction.atomic():
            url = f"/admin/agents/user/{target.pk}/change/"
            answer = _admin_answer(
                cast.client(actor).post(url, _user_change_post(target, is_superuser="on"))
            )
            raised = User.objects.get(pk=target.pk).is_superuser
            transaction.set_rollback(True)
        expected = LOGIN if _outside(actor) else (302 if actor == "superuser" else REFUSED)
        assert answer == expected, actor
        assert raised == (actor == "superuser"), actor


def test_it_lets_only_a_superuser_change_groups_flags_and_passwords_of_operators(
    cast: Cast,
) -> None:
    viewer = cast.people["viewer"]
    editor_group = Group.objects.get(name="editor")
    for actor in ADMIN_ACTORS:
        client = cast.client(actor)
        with transaction.atomic():
            url = f"/admin/agents/user/{viewer.pk}/change/"
            answer = _admin_answer(
                client.post(url, _user_change_post(viewer, groups=[editor_group.pk]))
            )
            promoted = viewer.groups.filter(name="editor").exists()
            password_page = _admin_answer(client.get(f"/admin/agents/user/{viewer.pk}/password/"))
            transaction.set_rollback(True)
        if _outside(actor):
            assert (answer, password_page) == (LOGIN, LOGIN), actor
        elif actor == "superuser":
            assert (answer, password_page, promoted) == (302, 200, True)
        else:
            # The viewer changes nothing; to the editor another operator is not even shown.
            shown = REFUSED if actor == "viewer" else GONE
            assert (answer, password_page, promoted) == (shown, REFUSED, False), actor


def test_it_shows_non_superusers_end_users_and_themselves_only(cast: Cast) -> None:
    person = UserFactory(email="customer@example.com")
    for actor in ("viewer", "editor"):
        listed = cast.client(actor).get("/admin/agents/user/").content.decode()
        assert person.email in listed and cast.people[actor].email in listed
        # (The demoted operator, no longer staff, is an end user like any other now.)
        others = [p for name, p in cast.people.items() if name not in (actor, "demoted")]
        assert not any(other.email in listed for other in others), actor


def test_it_hides_superusers_from_everyone_else(cast: Cast) -> None:
    root = cast.people["superuser"]
    for actor in ADMIN_ACTORS:
        client = cast.client(actor)
        change = _admin_answer(client.get(f"/admin/agents/user/{root.pk}/change/"))
        delete = _admin_answer(client.get(f"/admin/agents/user/{root.pk}/delete/"))
        listed = client.get("/admin/agents/user/")
        if _outside(actor):
            assert (change, delete) == (LOGIN, LOGIN), actor
        elif actor == "superuser":
            assert (change, delete) == (200, 200)
            assert root.email in listed.content.decode()
        else:
            assert change == GONE, actor
            assert delete in (GONE, REFUSED), actor  # a viewer may not delete anything
            assert root.email not in listed.content.decode(), actor


def test_it_lets_editors_edit_end_users_but_not_delete_operators(cast: Cast) -> None:
    person = UserFactory(email="customer@example.com")
    viewer = cast.people["viewer"]
    for actor in ADMIN_ACTORS:
        client = cast.client(actor)
        with transaction.atomic():
            edited = _admin_answer(
                client.post(
                    f"/admin/agents/user/{person.pk}/change/",
                    _user_change_post(person, name="Renamed", is_staff="on"),
                )
            )
            person_now = User.objects.get(pk=person.pk)
            deleted = _admin_answer(
                client.post(f"/admin/agents/user/{viewer.pk}/delete/", {"post": "yes"})
            )
            bulk = _admin_answer(
                client.post(
                    "/admin/agents/user/",
                    {"action": "delete_selected", "_selected_action": [viewer.pk], "post": "yes"},
                )
            )
            viewer_kept = User.objects.filter(pk=viewer.pk).exists()
            transaction.set_rollback(True)
        if _outside(actor):
            assert (edited, deleted, bulk) == (LOGIN, LOGIN, LOGIN), actor
            continue
        if actor == "viewer":
            assert (edited, deleted, viewer_kept) == (REFUSED, REFUSED, True)
            continue
        assert edited == 302, actor
        assert person_now.name == "Renamed"
        # Only a superuser may make staff of anyone.
        assert person_now.is_staff == (actor == "superuser"), actor
        if actor == "editor":
            # The viewer is not in the editor's list: the page answers "no such user", and the
            # action finds nothing of the selection to delete.
            assert (deleted, bulk, viewer_kept) == (GONE, 302, True)
        else:
            assert viewer_kept is False


def test_it_lets_nobody_but_a_superuser_issue_a_key_in_anothers_name(cast: Cast) -> None:
    root = cast.people["superuser"]
    for actor in ADMIN_ACTORS:
        client = cast.client(actor)
        before = set(ApiKey.objects.values_list("pk", flat=True))
        with transaction.atomic():
            response = client.post(
                "/admin/agents/apikey/add/", {"user": root.pk, "name": "x", "scope": "write"}
            )
            made = list(ApiKey.objects.exclude(pk__in=before).select_related("user"))
            transaction.set_rollback(True)
        answer = _admin_answer(response)
        if _outside(actor):
            assert (answer, made) == (LOGIN, []), actor
        elif actor == "viewer":
            assert (answer, made) == (REFUSED, []), actor  # viewers add no keys in the admin
        elif actor == "editor":
            # The editor's form has no owner field: the key is the editor's own, never root's.
            assert answer == 200 and [k.user for k in made] == [cast.people["editor"]]
        else:
            assert answer == 200 and [k.user for k in made] == [root]


def test_it_refuses_a_key_that_could_do_more_than_its_owner(cast: Cast) -> None:
    client = cast.client("superuser")
    viewer = cast.people["viewer"]
    response = client.post(
        "/admin/agents/apikey/add/", {"user": viewer.pk, "name": "x", "scope": "write"}
    )
    assert response.status_code == 200
    assert "is a viewer and may only read" in response.content.decode()
    assert not viewer.api_keys.filter(name="x").exists()
    # A read key is fine; raising its scope later is refused the same way.
    client.post("/admin/agents/apikey/add/", {"user": viewer.pk, "name": "x", "scope": "read"})
    key = viewer.api_keys.get(name="x")
    response = client.post(
        f"/admin/agents/apikey/{key.pk}/change/", {"name": "x", "scope": "write", "_save": "1"}
    )
    assert "is a viewer and may only read" in response.content.decode()
    key.refresh_from_db()
    assert key.scope == "read"


def test_it_shows_editors_their_own_keys_only(cast: Cast) -> None:
    client = cast.client("editor")
    page = client.get("/admin/agents/apikey/").content.decode()
    own = ApiKey.objects.filter(user=cast.people["editor"])
    others = ApiKey.objects.exclude(user=cast.people["editor"])
    assert all(key.prefix in page for key in own)
    assert not any(key.prefix in page for key in others)
    other = others.first()
    assert _admin_answer(client.get(f"/admin/agents/apikey/{other.pk}/change/")) == GONE


def test_it_lists_an_operators_keys_and_revokes_them_all(cast: Cast) -> None:
    editor = cast.people["editor"]
    root = cast.client("superuser")
    page = root.get(f"/admin/agents/user/{editor.pk}/change/").content.decode()
    for key in editor.api_keys.all():
        assert key.prefix in page
    assert "Revoke them all" in page
    confirm = root.get(f"/admin/agents/user/{editor.pk}/revoke-keys/")
    assert confirm.status_code == 200 and b"Yes, revoke them all" in confirm.content
    # Nobody else may use it.
    for actor in ("viewer", "editor"):
        assert (
            cast.client(actor).post(f"/admin/agents/user/{editor.pk}/revoke-keys/").status_code
            == 403
        )
    assert editor.api_keys.filter(revoked_at__isnull=True).count() == 2
    done = root.post(f"/admin/agents/user/{editor.pk}/revoke-keys/")
    assert done.status_code == 302
    assert editor.api_keys.filter(revoked_at__isnull=True).count() == 0
    assert ApiClient(cast.secrets[("editor", "read")]).get("/agents").status_code == 401


def test_it_revokes_the_keys_of_selected_operators_by_action(cast: Cast) -> None:
    people = [cast.people["viewer"], cast.people["editor"]]
    response = cast.client("superuser").post(
        "/admin/agents/user/",
        {"action": "revoke_api_keys", "_selected_action": [p.pk for p in people]},
    )
    assert response.status_code == 302
    assert not ApiKey.objects.filter(user__in=people, revoked_at__isnull=True).exists()
    assert (
        ApiKey.objects.filter(user=cast.people["superuser"], revoked_at__isnull=True).count() == 2
    )


def test_it_refuses_a_viewer_a_write_key_from_the_command(cast: Cast) -> None:
    from django.core.management import CommandError, call_command

    viewer = cast.people["viewer"]
    with pytest.raises(CommandError, match="is a viewer and may only read"):
        call_command("create_api_key", "--user", viewer.email, "--scope", "write")
    with pytest.raises(CommandError, match="has no role"):
        call_command("create_api_key", "--user", cast.people["demoted"].email, "--scope", "read")
    assert viewer.api_keys.count() == 2  # the two the cast began with
