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


class MemoryQuerySet(models.QuerySet["Memory"]):
    def in_scope(self, *, agent: Agent | int | None, user: object | None) -> MemoryQuerySet:
        """Memories of exactly this (agent, user) scope; `None` means "no agent" / "no user"."""
        return self.filter(
            Q(agent__isnull=True) if agent is None else Q(agent=agent),
            Q(user__isnull=True) if user is None else Q(user=user),
        )


class Memory(models.Model):
    """A named memory. A name is unique within its (agent, user) scope, empty parts included."""

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
    session = models.ForeignKey(
        Session, on_delete=models.CASCADE, null=True, blank=True, related_name="memories"
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
        # nulls_distinct), so each way a scope part can be empty gets its own partial constraint.
        constraints = [
            models.UniqueConstraint(
                fields=["agent", "user", "name"],
                condition=Q(agent__isnull=False, user__isnull=False),
                name="memory_name_agent_user_uniq",
            ),
            models.UniqueConstraint(
                fields=["agent", "name"],
                condition=Q(agent__isnull=False, user__isnull=True),
                name="memory_name_agent_uniq",
            ),
            models.UniqueConstraint(
                fields=["user", "name"],
                condition=Q(agent__isnull=True, user__isnull=False),
                name="memory_name_user_uniq",
            ),
            models.UniqueConstraint(
                fields=["name"],
                condition=Q(agent__isnull=True, user__isnull=True),
                name="memory_name_global_uniq",
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
