"""Who takes part: people (end users and operators), agents, and the operators' API keys."""

from __future__ import annotations

import hashlib
import secrets
import time
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.db.models import Q
from django.utils import timezone


class Role(models.IntegerChoices):
    """An operator's role, in order of power. Only an active staff user has one; a superuser is
    a superuser, an editor holds `EDITOR_PERMISSIONS` (the "editor" group), a viewer holds
    `VIEWER_PERMISSIONS` (the "viewer" group). An API key never does more than its owner's role."""

    NONE = 0, "No access"
    VIEWER = 1, "Viewer"
    EDITOR = 2, "Editor"
    SUPERUSER = 3, "Superuser"

    @classmethod
    def of(cls, *, active: bool, staff: bool, superuser: bool, editor: bool, viewer: bool) -> Role:
        """The role of a person with these flags, holding the editor's or the viewer's
        permissions (all of them) or neither."""
        if not (active and staff):
            return cls.NONE
        if superuser:
            return cls.SUPERUSER
        if editor:
            return cls.EDITOR
        return cls.VIEWER if viewer else cls.NONE


# The agent data a viewer may read and an editor may also change (the groups hold them all).
VIEWER_PERMISSIONS = ("agents.view_agent", "sessions_app.view_session", "memories.view_memory")
EDITOR_PERMISSIONS = (
    "agents.change_agent",
    "sessions_app.change_session",
    "memories.change_memory",
)


class UserQuerySet(models.QuerySet["User"]):
    def end_users(self) -> UserQuerySet:
        """The people agents talk to: never staff, never superusers."""
        return self.filter(is_staff=False, is_superuser=False)

    def operators(self) -> UserQuerySet:
        return self.filter(Q(is_staff=True) | Q(is_superuser=True))


class UserManager(BaseUserManager.from_queryset(UserQuerySet)):  # type: ignore[misc]
    use_in_migrations = True

    @classmethod
    def normalize_email(cls, email: str | None) -> str:
        # The whole address is case-folded: one person, one row, whatever the caller typed.
        return (email or "").strip().lower()

    def get_by_natural_key(self, email: str) -> User:
        # Exact first: a backup must find a row stored before addresses were case-folded.
        user = self.filter(email=email).first()
        return user if user is not None else self.get(email=self.normalize_email(email))

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> User:
        if not email:
            raise ValueError("A user needs an email address.")
        user = self.model(email=self.normalize_email(email), **extra)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self.create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """A person: an end user an agent talks to (no usable password) or an operator (staff)."""

    email = models.EmailField(unique=True)
    name = models.CharField(max_length=200, blank=True)
    phone_number = models.CharField(max_length=32, blank=True)
    user_data = models.JSONField(default=dict, blank=True)
    is_staff = models.BooleanField(
        default=False, help_text="Operators are staff: they may log in to the console and admin."
    )
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # The users list in the API and admin: newest first, keyset on (created_at, id).
            models.Index(fields=["-created_at", "-id"], name="user_created_idx"),
        ]

    def __str__(self) -> str:
        return self.email

    def natural_key(self) -> tuple[str]:
        return (self.email,)

    @property
    def is_operator(self) -> bool:
        return self.is_staff or self.is_superuser

    @property
    def role(self) -> Role:
        """What this person may do in Logdeck, from their flags and permissions (see `Role`)."""
        operator = self.is_active and self.is_staff
        return Role.of(
            active=self.is_active,
            staff=self.is_staff,
            superuser=self.is_superuser,
            editor=operator and self.has_perms(EDITOR_PERMISSIONS),
            viewer=operator and self.has_perms(VIEWER_PERMISSIONS),
        )


class AgentQuerySet(models.QuerySet["Agent"]):
    def active(self) -> AgentQuerySet:
        return self.filter(active=True)


class AgentManager(models.Manager.from_queryset(AgentQuerySet)):  # type: ignore[misc]
    def get_by_natural_key(self, name: str) -> Agent:
        return self.get(name=name)


class Agent(models.Model):
    """An AI agent and its configuration; `name` is its natural key."""

    name = models.CharField(max_length=200, unique=True)
    type = models.CharField(max_length=100, blank=True)
    model = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True)
    config = models.JSONField(default=dict, blank=True)
    system_prompt = models.TextField(blank=True)
    version = models.CharField(max_length=100, blank=True)
    active = models.BooleanField(default=True)
    run_id = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = AgentManager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def natural_key(self) -> tuple[str]:
        return (self.name,)


class ApiKeyScope(models.TextChoices):
    READ = "read", "Read"
    WRITE = "write", "Read and write"


API_KEY_PREFIX = "ldk_"


def api_key_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiKey(models.Model):
    """An operator's key for the API. Only a SHA-256 hash of the secret is kept."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=200, blank=True)
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    hashed_secret = models.CharField(max_length=64, unique=True, editable=False)
    scope = models.CharField(max_length=10, choices=ApiKeyScope, default=ApiKeyScope.READ)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API key"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.get_scope_display()}, {self.user})"

    @staticmethod
    def generate_secret() -> tuple[str, str]:
        """A new secret and its visible prefix: `ldk_<8 chars>_<43 chars of entropy>`."""
        prefix = API_KEY_PREFIX + secrets.token_hex(4)
        return prefix, f"{prefix}_{secrets.token_urlsafe(32)}"

    @property
    def is_usable(self) -> bool:
        if self.revoked_at is not None or not self.user.is_active:
            return False
        return self.expires_at is None or self.expires_at > timezone.now()

    @property
    def can_write(self) -> bool:
        return self.scope == ApiKeyScope.WRITE

    def allows(self, role: Role) -> Role:
        """What this key may do for an owner of `role`: the smaller of its scope and the role."""
        if role == Role.NONE:
            return Role.NONE
        return min(role, Role.EDITOR if self.can_write else Role.VIEWER)


class ApiKeyFailure(models.Model):
    """Failed API key attempts from one address within one time window. In the database, so
    that every worker process counts the same failures, with Redis or without it."""

    address = models.CharField(max_length=100)
    window = models.BigIntegerField(help_text="Seconds since the epoch, divided by the window.")
    count = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = "failed API key attempts"
        verbose_name_plural = "failed API key attempts"
        constraints = [
            # The counter a failed attempt increments, found by address and window.
            models.UniqueConstraint(fields=["address", "window"], name="api_key_failure_unique"),
        ]
        indexes = [
            # Dropping the windows that have passed.
            models.Index(fields=["window"], name="api_key_failure_window_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.count} failed attempt(s) from {self.address}"

    @staticmethod
    def current_window() -> tuple[int, float]:
        """The current window's number, and the seconds left in it."""
        length = settings.API_AUTH_FAILURE_WINDOW
        now = time.time()
        return int(now // length), length - (now % length)


def agent_cache_key(name: str) -> str:
    """The cache key of an agent's configuration, read by the selectors, dropped by the services."""
    # Hashed: a name may hold spaces or 200 characters, which cache keys must not (memcached
    # rules, which Django checks for every backend and warns about on each read).
    return "agent-config:" + hashlib.sha256(name.encode()).hexdigest()
