"""Admin for memories. A memory's name stays unique in its scope (global, agent, user, agent +
user, or one session): the form checks the scope rules and the name, so a clash is a form error,
never a database error."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import Q, QuerySet
from django.db.models.functions import Substr
from django.http import HttpRequest
from django.utils.html import format_html

from config.admin_bigtable import BigTableAdmin, change_url
from memories.models import Memory
from sessions_app.admin import owner_search
from sessions_app.models import Session

PREVIEW_CHARS = 120


class MemoryForm(forms.ModelForm):
    class Meta:
        model = Memory
        fields = (
            "name",
            "agent",
            "user",
            "session",
            "source_session",
            "read_mode",
            "access",
            "description",
            "content",
            "metadata",
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        agent, user, session = data.get("agent"), data.get("user"), data.get("session")
        source = data.get("source_session")
        name = data.get("name")
        if session is not None and (agent is not None or user is not None):
            self.add_error(
                "session",
                "A session's memory belongs to the session alone: clear agent and user, "
                "or clear session and set it as the source session.",
            )
            return data
        if session is not None and source is not None:
            self.add_error("source_session", "A session's memory comes from its own session.")
            return data
        if name:
            same = Memory.objects.in_scope(agent=agent, user=user, session=session)
            same = same.filter(name=name)
            if self.instance.pk is not None:
                same = same.exclude(pk=self.instance.pk)
            if same.exists():
                self.add_error("name", "A memory of this name already exists in this scope.")
        if source is not None and agent is not None and source.agent_id != agent.pk:
            self.add_error("source_session", "The session belongs to another agent.")
        return data


class ScopeFilter(admin.SimpleListFilter):
    title = "scope"
    parameter_name = "scope"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            ("agent_user", "Agent and user"),
            ("agent", "Agent only"),
            ("user", "User only"),
            ("global", "Global"),
            ("session", "Session"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Memory]) -> QuerySet[Memory]:
        wide = {"session__isnull": True}
        scopes = {
            "agent_user": {"agent__isnull": False, "user__isnull": False, **wide},
            "agent": {"agent__isnull": False, "user__isnull": True, **wide},
            "user": {"agent__isnull": True, "user__isnull": False, **wide},
            "global": {"agent__isnull": True, "user__isnull": True, **wide},
            "session": {"session__isnull": False},
        }
        value = self.value()
        return queryset.filter(**scopes[value]) if value in scopes else queryset


@admin.register(Memory)
class MemoryAdmin(BigTableAdmin):
    form = MemoryForm
    list_display = (
        "name",
        "agent",
        "user",
        "session_link",
        "read_mode",
        "access",
        "content_preview",
        "updated_at",
    )
    list_select_related = ("agent", "user")
    list_filter = (ScopeFilter, "read_mode", "access", "agent")
    search_fields = ("name",)  # see get_search_results
    search_help_text = "A memory's exact name or id, a user's exact email, or an agent's name."
    ordering = ("-updated_at", "-id")
    sortable_by = ("updated_at",)
    changelist_deferred_fields = (
        "content",
        "description",
        "metadata",
        "agent__config",
        "agent__system_prompt",
        "agent__description",
        "user__user_data",
        "user__password",
    )
    raw_id_fields = ("agent", "user", "session", "source_session")
    readonly_fields = ("id", "created_at", "updated_at")
    fields = (
        "id",
        "name",
        "agent",
        "user",
        "session",
        "source_session",
        "read_mode",
        "access",
        "description",
        "content",
        "metadata",
        "created_at",
        "updated_at",
    )

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Memory], search_term: str
    ) -> tuple[QuerySet[Memory], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        # Name has no index of its own (it is last in the scope constraints): a scan of
        # memories, which number far fewer than messages.
        return queryset.filter(owner_search(term) | Q(name=term)), False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Memory]:
        return super().get_queryset(request).annotate(_preview=Substr("content", 1, PREVIEW_CHARS))

    @admin.display(description="Session")
    def session_link(self, memory: Memory) -> str:
        if memory.session_id is None:
            return "-"
        url = change_url(Session, memory.session_id)
        return format_html('<a href="{}">{}</a>', url, str(memory.session_id)[:8])

    @admin.display(description="Content")
    def content_preview(self, memory: Memory) -> str:
        return getattr(memory, "_preview", "")
