"""Reads for people, agents and API keys."""

from __future__ import annotations

import hmac
import math
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.core.cache import cache
from django.db import DEFAULT_DB_ALIAS, connection
from django.db.models import QuerySet

from agents.models import (
    EDITOR_PERMISSIONS,
    VIEWER_PERMISSIONS,
    Agent,
    ApiKey,
    ApiKeyFailure,
    Role,
    User,
    agent_cache_key,
    api_key_hash,
)
from config.database import prepared_cursor
from config.errors import NotFound

# last_used_at is written at most this often per key, so reads do not turn into writes.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def agent_list(*, active_only: bool = False) -> QuerySet[Agent]:
    """Agents by name; only the active ones when asked."""
    agents = Agent.objects.all()
    return agents.active() if active_only else agents


AGENT_CHOICES_LIMIT = 500  # agents are few; a filter lists this many by name


def agent_choices() -> list[tuple[int, str]]:
    """(id, name) of the agents, by name, for a console filter's select."""
    return list(agent_list().values_list("id", "name")[:AGENT_CHOICES_LIMIT])


def agent_lookup(ref: int | str) -> dict[str, Any]:
    """The filter that finds an agent by `ref`, its id if all digits, else its name."""
    # ASCII digits only: "¹".isdigit() is true, yet int("¹") fails.
    is_id = isinstance(ref, int) or (str(ref).isascii() and str(ref).isdigit())
    return {"pk": int(ref)} if is_id else {"name": ref}


def agent_get(*, ref: int | str) -> Agent:
    """An agent by id or by name (a name of digits when no agent has that id)."""
    lookup = agent_lookup(ref)
    agent = Agent.objects.filter(**lookup).first()
    if agent is None and "pk" in lookup:
        agent = Agent.objects.filter(name=str(ref)).first()
    if agent is None:
        raise NotFound(f"No agent {ref!r}.")
    return agent


def agent_config(*, name: str) -> dict[str, Any]:
    """An agent's configuration as a runtime reads it, through the cache (dropped on change)."""
    key = agent_cache_key(name)
    config = cache.get(key)
    if config is None:
        # From the primary: a replica behind would put the old configuration back in the cache
        # right after a change dropped it, for the cache's whole lifetime.
        agent = Agent.objects.using(DEFAULT_DB_ALIAS).filter(name=name).first()
        if agent is None:
            raise NotFound(f"No agent {name!r}.")
        config = {
            "id": agent.pk,
            "name": agent.name,
            "type": agent.type,
            "model": agent.model,
            "config": agent.config,
            "system_prompt": agent.system_prompt,
            "version": agent.version,
            "active": agent.active,
        }
        cache.set(key, config, settings.AGENT_CONFIG_CACHE_SECONDS)
    return config


def end_user_list(
    *,
    email: str = "",
    created_after: datetime | None = None,
    created_before: datetime | None = None,
) -> QuerySet[User]:
    """End users, optionally one email's or those created in a window."""
    users = User.objects.end_users()
    if email:
        users = users.filter(email=User.objects.normalize_email(email))
    if created_after:
        users = users.filter(created_at__gte=created_after)
    if created_before:
        users = users.filter(created_at__lt=created_before)
    return users


def end_user_get(*, ref: int | str) -> User:
    """An end user by id or email; operators are invisible here."""
    users = User.objects.end_users()
    if isinstance(ref, int) or (str(ref).isascii() and str(ref).isdigit()):
        user = users.filter(pk=int(ref)).first()
    else:
        user = users.filter(email=User.objects.normalize_email(str(ref))).first()
    if user is None:
        raise NotFound(f"No user {ref!r}.")
    return user


def _granted_sql(perms: tuple[str, ...], user_column: str) -> tuple[str, list[str]]:
    """SQL counting how many of `perms` the user holds, directly or through a group."""
    tables = {
        name: connection.ops.quote_name(model._meta.db_table)
        for name, model in (
            ("perm", Permission),
            ("ct", ContentType),
            ("user_perm", User.user_permissions.through),
            ("user_group", User.groups.through),
            ("group_perm", Group.permissions.through),
        )
    }
    wanted = " OR ".join("(ct.app_label = %s AND p.codename = %s)" for _ in perms)
    sql = (
        f"(SELECT COUNT(DISTINCT p.id) FROM {tables['perm']} p "
        f"JOIN {tables['ct']} ct ON ct.id = p.content_type_id WHERE ({wanted}) AND ("
        f"EXISTS (SELECT 1 FROM {tables['user_perm']} up "
        f"WHERE up.user_id = {user_column} AND up.permission_id = p.id) OR "
        f"EXISTS (SELECT 1 FROM {tables['group_perm']} gp "
        f"JOIN {tables['user_group']} ug ON ug.group_id = gp.group_id "
        f"WHERE ug.user_id = {user_column} AND gp.permission_id = p.id)))"
    )
    return sql, [part for perm in perms for part in perm.split(".", 1)]


def api_key_lookup(*, secret: str) -> ApiKey | None:
    """The usable key for this secret, or None; the hash is compared in constant time. The
    key's `owner_role` is its owner's role as it stands now, read in the same query, so a
    demoted operator's keys lose their power on the next request."""
    if not secret:
        return None
    hashed = api_key_hash(secret)
    # One row by its unique hash, with the owner's flags and permissions, in one query written out
    # (the ORM's query building cost more than the query on every API request). The user comes
    # with only the columns the checks read; the rest loads if asked for.
    # On PostgreSQL the statement is prepared: it runs on every API request, and planning its
    # subqueries cost more than running them.
    key_fields = ApiKey._meta.concrete_fields
    keys, users = (connection.ops.quote_name(m._meta.db_table) for m in (ApiKey, User))
    editor_sql, editor_params = _granted_sql(EDITOR_PERMISSIONS, "u.id")
    viewer_sql, viewer_params = _granted_sql(VIEWER_PERMISSIONS, "u.id")
    columns = ", ".join(f"k.{connection.ops.quote_name(f.column)}" for f in key_fields)
    with prepared_cursor() if connection.vendor == "postgresql" else connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {columns}, u.is_active, u.is_staff, u.is_superuser, {editor_sql}, "
            f"{viewer_sql} FROM {keys} k JOIN {users} u ON u.id = k.user_id "
            f"WHERE k.hashed_secret = %s",
            [*editor_params, *viewer_params, hashed],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    # from_db takes a row's values in the model's field order (converted as the ORM would).
    values = list(row[: len(key_fields)])
    for i, field in enumerate(key_fields):
        column = field.get_col(ApiKey._meta.db_table)
        for convert in connection.ops.get_db_converters(column) + column.get_db_converters(
            connection
        ):
            values[i] = convert(values[i], column, connection)
    key = ApiKey.from_db(connection.alias, [f.attname for f in key_fields], values)
    active, staff, superuser, editor_perms, viewer_perms = row[len(key_fields) :]
    loaded = {"id": key.user_id, "is_active": active, "is_staff": staff, "is_superuser": superuser}
    names = [f.attname for f in User._meta.concrete_fields if f.attname in loaded]
    key.user = User.from_db(connection.alias, names, [loaded[name] for name in names])
    if not hmac.compare_digest(key.hashed_secret, hashed) or not key.is_usable:
        return None
    key.owner_role = Role.of(
        active=bool(active),
        staff=bool(staff),
        superuser=bool(superuser),
        editor=editor_perms == len(EDITOR_PERMISSIONS),
        viewer=viewer_perms == len(VIEWER_PERMISSIONS),
    )
    return key


def api_key_failure_wait(*, address: str) -> int | None:
    """Seconds `address` must wait before its next failed key attempt counts, or None while it
    is under the limit of failures in the current window."""
    window, remaining = ApiKeyFailure.current_window()
    failures = (
        ApiKeyFailure.objects.filter(address=address[:100], window=window)
        .values_list("count", flat=True)
        .first()
    )
    if failures is not None and failures >= settings.API_AUTH_FAILURE_LIMIT:
        return max(1, math.ceil(remaining))
    return None
