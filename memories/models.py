"""What is remembered: named memories scoped to an agent, a user and a session."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from agents.models import Agent
from sessions_app.models import Session


class ReadMode(models.TextChoices):
    SYSTEM_PROMPT = "system_prompt", "In the system prompt"
    TOOL = "tool", "Through a tool"


class Access(models.TextChoices):
    READ_WRITE = "read_write", "Read and write"
    READ_ONLY = "read_only", "Read only"


class Scope(models.TextChoices):
    GLOBAL = "global", "Global"
    AGENT = "agent", "Agent"
    USER = "user", "User"
    AGENT_USER = "agent_user", "Agent and user"
    SESSION = "session", "Session"


class MemoryQuerySet(models.QuerySet["Memory"]):
    def in_scope(
        self, *, agent: Agent | int | None, user: object | None, session: object | None = None
    ) -> MemoryQuerySet:
        """Memories of exactly this scope: a session's own, or (without a session) this
        (agent, user) pair's, where `None` means "no agent" / "no user"."""
        if session is not None:
            return self.filter(session=session)
        return self.filter(
            Q(agent__isnull=True) if agent is None else Q(agent=agent),
            Q(user__isnull=True) if user is None else Q(user=user),
            session__isnull=True,
        )


class Memory(models.Model):
    """A named memory. Its scope is global, an agent, a user, an agent and a user, or one
    session; a name is unique within its scope. A memory of a wider scope may name the session
    it came from (`source_session`), which it outlives."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    content = models.TextField(blank=True)
    agent = models.ForeignKey(
        Agent, on_delete=models.CASCADE, null=True, blank=True, related_name="memories"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="memories",
    )
    # The session scope: the memory belongs to this session alone and goes with it.
    session = models.ForeignKey(
        Session, on_delete=models.CASCADE, null=True, blank=True, related_name="memories"
    )
    # Where a memory of another scope came from; deleting that session only clears the link.
    source_session = models.ForeignKey(
        Session,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="sourced_memories",
    )
    read_mode = models.CharField(max_length=16, choices=ReadMode, default=ReadMode.TOOL)
    access = models.CharField(max_length=16, choices=Access, default=Access.READ_WRITE)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = MemoryQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "memories"
        ordering = ["-updated_at", "-id"]
        # NULLs are distinct in a plain unique constraint on both databases (and SQLite ignores
        # nulls_distinct), so each scope gets its own partial constraint.
        constraints = [
            models.UniqueConstraint(
                fields=["agent", "user", "name"],
                condition=Q(agent__isnull=False, user__isnull=False, session__isnull=True),
                name="memory_name_agent_user_uniq",
            ),
            models.UniqueConstraint(
                fields=["agent", "name"],
                condition=Q(agent__isnull=False, user__isnull=True, session__isnull=True),
                name="memory_name_agent_uniq",
            ),
            models.UniqueConstraint(
                fields=["user", "name"],
                condition=Q(agent__isnull=True, user__isnull=False, session__isnull=True),
                name="memory_name_user_uniq",
            ),
            models.UniqueConstraint(
                fields=["name"],
                condition=Q(agent__isnull=True, user__isnull=True, session__isnull=True),
                name="memory_name_global_uniq",
            ),
            models.UniqueConstraint(
                fields=["session", "name"],
                condition=Q(session__isnull=False),
                name="memory_name_session_uniq",
            ),
            # A session's memory has no agent, user or source of its own: the session is all.
            models.CheckConstraint(
                condition=Q(session__isnull=True)
                | Q(agent__isnull=True, user__isnull=True, source_session__isnull=True),
                name="memory_session_scope_alone",
            ),
        ]
        indexes = [
            # Memories browser and API lists by scope, most recently changed first.
            models.Index(fields=["agent", "-updated_at", "-id"], name="memory_agent_updated_idx"),
            models.Index(fields=["user", "-updated_at", "-id"], name="memory_user_updated_idx"),
            models.Index(fields=["session", "-updated_at"], name="memory_session_updated_idx"),
            models.Index(fields=["-updated_at", "-id"], name="memory_updated_idx"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def scope(self) -> Scope:
        if self.session_id is not None:
            return Scope.SESSION
        if self.agent_id is not None:
            return Scope.AGENT_USER if self.user_id is not None else Scope.AGENT
        return Scope.USER if self.user_id is not None else Scope.GLOBAL
