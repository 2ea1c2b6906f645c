"""Writes for people, agents and API keys."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from agents.models import (
    Agent,
    ApiKey,
    ApiKeyFailure,
    ApiKeyScope,
    Role,
    User,
    agent_cache_key,
    api_key_hash,
)
from agents.selectors import LAST_USED_RESOLUTION, api_key_lookup
from config.errors import Conflict, Forbidden, InvalidInput

USER_FIELDS = ("name", "phone_number", "user_data")
AGENT_FIELDS = (
    "type",
    "model",
    "description",
    "config",
    "system_prompt",
    "version",
    "active",
    "run_id",
)


def _forget_agent(name: str) -> None:
    # After commit: a reader must never cache the old row again after we dropped it.
    transaction.on_commit(lambda: cache.delete(agent_cache_key(name)))


def _apply(instance: Any, fields: dict[str, Any], allowed: tuple[str, ...]) -> list[str]:
    unknown = set(fields) - set(allowed)
    if unknown:
        raise InvalidInput(f"Unknown field(s): {', '.join(sorted(unknown))}.", field=min(unknown))
    changed = [name for name, value in fields.items() if getattr(instance, name) != value]
    for name in changed:
        setattr(instance, name, fields[name])
    return changed


def _reserved_for_operators(email: str) -> bool:
    domain = email.rpartition("@")[2]
    return domain in settings.OPERATOR_EMAIL_DOMAINS


def _email_unavailable() -> Conflict:
    # One answer for an address an operator has, one in an operators' domain, and (on a change)
    # one another end user has, so the API never says which: operators stay invisible here.
    return Conflict("This email cannot be used for an end user.", field="email")


@transaction.atomic
def user_upsert(*, email: str, **fields: Any) -> tuple[User, bool]:
    """Create an end user, or update the one with this email. Operators are never touched."""
    email = User.objects.normalize_email(email)
    if not email:
        raise InvalidInput("email is required.", field="email")
    if _reserved_for_operators(email):
        raise _email_unavailable()
    user = User.objects.select_for_update().filter(email=email).first()
    if user is None:
        user = User(email=email)
        _apply(user, fields, USER_FIELDS)
        user.set_unusable_password()
        user.save()
        return user, True
    if user.is_operator:
        raise _email_unavailable()
    if changed := _apply(user, fields, USER_FIELDS):
        user.save(update_fields=[*changed, "updated_at"])
    return user, False


@transaction.atomic
def user_update(*, user: User, **fields: Any) -> User:
    """Change an end user's details (never staff flags or passwords)."""
    if user.is_operator:
        raise Forbidden("Operators are managed in the admin.")
    changed: list[str] = []
    email = User.objects.normalize_email(fields.pop("email")) if "email" in fields else user.email
    if email != user.email:
        if _reserved_for_operators(email) or User.objects.filter(email=email).exists():
            raise _email_unavailable()
        user.email = email
        changed.append("email")
    changed += _apply(user, fields, USER_FIELDS)
    if changed:
        user.save(update_fields=[*changed, "updated_at"])
    return user


@transaction.atomic
def user_delete(*, user: User) -> None:
    """Delete an end user; their sessions stay, with no user."""
    if user.is_operator:
        raise Forbidden("Operators are managed in the admin.")
    user.delete()


@transaction.atomic
def agent_upsert(*, name: str, **fields: Any) -> tuple[Agent, bool]:
    """Create the agent called `name`, or update it with the fields given."""
    name = name.strip()
    if not name:
        raise InvalidInput("name is required.", field="name")
    agent = Agent.objects.select_for_update().filter(name=name).first()
    if agent is None:
        agent = Agent(name=name)
        _apply(agent, fields, AGENT_FIELDS)
        agent.save()
        return agent, True
    if changed := _apply(agent, fields, AGENT_FIELDS):
        agent.save(update_fields=[*changed, "updated_at"])
        _forget_agent(agent.name)
    return agent, False


@transaction.atomic
def agent_update(*, agent: Agent, **fields: Any) -> Agent:
    """Change an agent's fields; a rename keeps its data and drops the cached configuration."""
    old_name = agent.name
    changed: list[str] = []
    if "name" in fields:
        new_name = fields.pop("name").strip()
        if not new_name:
            raise InvalidInput("name may not be empty.", field="name")
        if new_name != old_name:
            if Agent.objects.filter(name=new_name).exists():
                raise Conflict("Another agent has this name.", field="name")
            agent.name = new_name
            changed.append("name")
    changed += _apply(agent, fields, AGENT_FIELDS)
    if changed:
        agent.save(update_fields=[*changed, "updated_at"])
        _forget_agent(old_name)
        _forget_agent(agent.name)
    return agent


@transaction.atomic
def agents_deactivate(*, agents: Any) -> int:
    """Mark agents inactive (the admin action); returns how many changed."""
    names = list(agents.filter(active=True).values_list("name", flat=True))
    updated = agents.filter(active=True).update(active=False, updated_at=timezone.now())
    for name in names:
        _forget_agent(name)
    return updated


@transaction.atomic
def agent_delete(*, agent: Agent) -> dict[str, int]:
    """Delete an agent with its sessions and everything under them; returns rows per model."""
    name = agent.name
    _total, per_model = agent.delete()
    _forget_agent(name)
    # The rollup rows go with the agent; they are bookkeeping, not the agent's data.
    per_model.pop("sessions_app.DailyActivity", None)
    per_model.pop("sessions_app.ErrorGroupDay", None)
    per_model.pop("sessions_app.ToolStateCount", None)
    counts = Counter({label.split(".")[-1].lower(): n for label, n in per_model.items()})
    return dict(counts)


@dataclass(frozen=True)
class IssuedKey:
    api_key: ApiKey
    secret: str  # shown once, never stored


@transaction.atomic
def api_key_create(
    *,
    user: User,
    scope: str = ApiKeyScope.READ,
    name: str = "",
    expires_at: Any = None,
    issued_by: User | None = None,
) -> IssuedKey:
    """Issue a key for an operator; the secret is returned here and nowhere else. A key never
    does more than its owner's role allows, and only a superuser issues one in another's name."""
    if scope not in ApiKeyScope.values:
        raise InvalidInput(f"scope must be one of {', '.join(ApiKeyScope.values)}.", field="scope")
    if issued_by is not None and issued_by.pk != user.pk and not issued_by.is_superuser:
        raise Forbidden("Only a superuser may issue an API key in another operator's name.")
    api_key_scope_check(owner=user, scope=scope)
    prefix, secret = ApiKey.generate_secret()
    key = ApiKey.objects.create(
        user=user,
        name=name,
        prefix=prefix,
        hashed_secret=api_key_hash(secret),
        scope=scope,
        expires_at=expires_at,
    )
    return IssuedKey(api_key=key, secret=secret)


def api_key_scope_check(*, owner: User, scope: str) -> None:
    """Refuse a key (new, or a changed scope) that could do more than its owner's role."""
    role = owner.role
    if role == Role.NONE:
        raise Forbidden(
            f"{owner.email} has no role: API keys belong to active operators in the viewer or "
            "editor group, or superusers."
        )
    if scope == ApiKeyScope.WRITE and role < Role.EDITOR:
        raise Forbidden(
            f"{owner.email} is a viewer and may only read: issue a read key, or make them an "
            "editor first."
        )


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    """Revoke a key at once; revoking twice keeps the first time."""
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
    return api_key


@transaction.atomic
def api_keys_revoke_all(*, user: User) -> int:
    """Revoke every key of an operator that is not revoked yet; returns how many."""
    return ApiKey.objects.filter(user=user, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )


def api_key_failure_record(*, address: str) -> None:
    """Count one failed key attempt from `address` in the current window, where every worker
    sees it. A new window's first failure also drops the windows that have passed."""
    window, _ = ApiKeyFailure.current_window()
    address = address[:100]
    counter = ApiKeyFailure.objects.filter(address=address, window=window)
    with transaction.atomic():
        if counter.update(count=F("count") + 1):
            return
        ApiKeyFailure.objects.filter(window__lt=window).delete()
        _, created = ApiKeyFailure.objects.get_or_create(
            address=address, window=window, defaults={"count": 1}
        )
        if not created:  # another worker counted its first failure in between
            counter.update(count=F("count") + 1)


def api_key_authenticate(*, secret: str) -> ApiKey | None:
    """The usable key for this secret, or None; its `last_used_at` moves on, at most once a
    `LAST_USED_RESOLUTION`, so a busy key costs no write per request."""
    key = api_key_lookup(secret=secret)
    if key is None:
        return None
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
    return key
