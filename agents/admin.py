"""Admin for people, agents and API keys. Writes go through agents.services."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.contrib.auth.models import Group
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.html import format_html

from agents.models import Agent, ApiKey, User
from agents.services import (
    AGENT_FIELDS,
    agent_delete,
    agent_update,
    agent_upsert,
    agents_deactivate,
    api_key_create,
    api_key_revoke,
)
from config.admin_bigtable import BigTableAdmin, CheckedSelectionMixin, changelist_link
from memories.models import Memory
from sessions_app.models import Checkpoint, Message, Session, ToolCall


def _clean_unique_email(form: forms.ModelForm) -> str:
    # The whole address is case-folded, as everywhere else: one person, one row.
    email = User.objects.normalize_email(form.cleaned_data.get("email"))
    others = User.objects.filter(email=email)
    if form.instance.pk is not None:
        others = others.exclude(pk=form.instance.pk)
    if email and others.exists():
        raise forms.ValidationError("A user with this email already exists.")
    return email


class UserCreationForm(AdminUserCreationForm):
    """Add a person by email; a password is optional (end users have none)."""

    class Meta:
        model = User
        fields = ("email",)
        field_classes: dict[str, Any] = {}

    def clean_email(self) -> str:
        return _clean_unique_email(self)


class UserEditForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"
        field_classes: dict[str, Any] = {}

    def clean_email(self) -> str:
        return _clean_unique_email(self)


@admin.register(User)
class UserAdmin(BigTableAdmin, DjangoUserAdmin):
    form = UserEditForm
    add_form = UserCreationForm
    list_display = ("email", "name", "is_staff", "is_superuser", "is_active", "created_at")
    list_filter = (
        "is_staff",
        "is_superuser",
        "is_active",
        ("created_at", admin.DateFieldListFilter),
    )
    # Exact matches only, so the unique index on email (and the primary key) serve every search.
    search_fields = ("email__exact", "id__exact")
    search_help_text = "An exact email address or user id."
    ordering = ("-created_at", "-id")
    sortable_by = ("created_at",)
    changelist_deferred_fields = ("user_data", "password")
    readonly_fields = ("last_login", "created_at", "updated_at", "sessions_link")
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Details", {"fields": ("name", "phone_number", "user_data")}),
        (
            "Permissions",
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        ("Activity", {"fields": ("sessions_link", "last_login", "created_at", "updated_at")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("email", "is_staff", "usable_password", "password1", "password2"),
            },
        ),
    )
    filter_horizontal = ("groups", "user_permissions")
    delete_cascades = ((Memory, "user"), (ApiKey, "user"))

    @admin.display(description="Sessions")
    def sessions_link(self, user: User) -> str:
        return changelist_link(Session, "This user's sessions", user=user.pk)


@admin.register(Agent)
class AgentAdmin(BigTableAdmin):
    list_display = ("name", "type", "model", "version", "active", "updated_at")
    list_filter = ("active",)
    # Agents number in the hundreds, not millions: a partial-name search is worth its scan.
    search_fields = ("name", "model")
    ordering = ("name",)
    changelist_deferred_fields = ("config", "system_prompt", "description")
    readonly_fields = ("created_at", "updated_at", "related_links")
    fields = (
        "name",
        "type",
        "model",
        "version",
        "active",
        "run_id",
        "description",
        "system_prompt",
        "config",
        "related_links",
        "created_at",
        "updated_at",
    )
    actions = ("deactivate",)
    delete_cascades = (
        (Session, "agent"),
        (Message, "agent"),
        (ToolCall, "agent"),
        (Checkpoint, "session__agent"),
        (Memory, "agent"),
    )

    @admin.display(description="Records")
    def related_links(self, agent: Agent) -> str:
        if agent.pk is None:
            return "-"
        return format_html(
            "{} · {} · {}",
            changelist_link(Session, "Sessions", agent=agent.pk),
            changelist_link(ToolCall, "Failed tool calls", agent=agent.pk, is_error__exact=1),
            changelist_link(Memory, "Memories", agent=agent.pk),
        )

    @admin.action(description="Deactivate selected agents", permissions=["change"])
    def deactivate(self, request: HttpRequest, queryset: QuerySet[Agent]) -> None:
        count = agents_deactivate(agents=queryset)
        self.message_user(request, f"{count} agent(s) deactivated.", messages.SUCCESS)

    def save_model(
        self, request: HttpRequest, obj: Agent, form: forms.ModelForm, change: bool
    ) -> None:
        # Through the services, so the cached agent configuration is dropped on every change.
        changed = {
            name: form.cleaned_data[name] for name in form.changed_data if name in AGENT_FIELDS
        }
        if change:
            if "name" in form.changed_data:
                changed["name"] = form.cleaned_data["name"]
            agent_update(agent=Agent.objects.get(pk=obj.pk), **changed)
        else:
            agent, _ = agent_upsert(name=obj.name, **changed)
            obj.pk = agent.pk
            obj.created_at = agent.created_at

    def delete_model(self, request: HttpRequest, obj: Agent) -> None:
        agent_delete(agent=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Agent]) -> None:
        for agent in queryset:
            agent_delete(agent=agent)


class ApiKeyAddForm(forms.ModelForm):
    class Meta:
        model = ApiKey
        fields = ("user", "name", "scope", "expires_at")


@admin.register(ApiKey)
class ApiKeyAdmin(BigTableAdmin):
    list_display = (
        "prefix",
        "name",
        "user",
        "scope",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
    )
    list_select_related = ("user",)
    list_filter = ("scope", ("revoked_at", admin.EmptyFieldListFilter))
    search_fields = ("prefix__exact", "user__email__exact", "id__exact")
    search_help_text = "A key's prefix (ldk_…), its owner's exact email, or its id."
    ordering = ("-created_at", "-id")
    actions = ("revoke",)
    issued_template = "admin/agents/apikey/issued.html"

    def get_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> tuple[str, ...]:
        if obj is None:
            return ("user", "name", "scope", "expires_at")
        return (
            "prefix",
            "user",
            "name",
            "scope",
            "created_at",
            "last_used_at",
            "expires_at",
            "revoked_at",
        )

    def get_readonly_fields(
        self, request: HttpRequest, obj: ApiKey | None = None
    ) -> tuple[str, ...]:
        if obj is None:
            return ()
        return ("prefix", "user", "created_at", "last_used_at", "revoked_at")

    def get_form(
        self, request: HttpRequest, obj: ApiKey | None = None, change: bool = False, **kwargs: Any
    ) -> type[forms.ModelForm]:
        if obj is None:
            kwargs["form"] = ApiKeyAddForm
        return super().get_form(request, obj, change=change, **kwargs)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "user":
            # Keys belong to operators, and operators are few: a select of them, never of all users.
            kwargs["queryset"] = User.objects.operators().order_by("email")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(
        self, request: HttpRequest, obj: ApiKey, form: forms.ModelForm, change: bool
    ) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        issued = api_key_create(
            user=form.cleaned_data["user"],
            scope=form.cleaned_data["scope"],
            name=form.cleaned_data["name"],
            expires_at=form.cleaned_data["expires_at"],
        )
        obj.pk = issued.api_key.pk
        obj.prefix = issued.api_key.prefix
        obj.hashed_secret = issued.api_key.hashed_secret
        obj.created_at = issued.api_key.created_at
        # Kept on this request's object only: shown on the next page, then gone for good.
        obj._issued_secret = issued.secret  # type: ignore[attr-defined]

    def response_add(
        self, request: HttpRequest, obj: ApiKey, post_url_continue: str | None = None
    ) -> HttpResponse:
        secret = getattr(obj, "_issued_secret", None)
        if secret is None:
            return super().response_add(request, obj, post_url_continue)
        # Rendered here rather than redirected, so the secret never sits in a message cookie;
        # the admin marks the response never_cache (no-store).
        return TemplateResponse(
            request,
            self.issued_template,
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "api_key": obj,
                "secret": secret,
                "title": "API key created",
            },
        )

    @admin.action(description="Revoke selected API keys", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        keys = list(queryset.filter(revoked_at__isnull=True))
        for key in keys:
            api_key_revoke(api_key=key)
        self.message_user(request, f"{len(keys)} API key(s) revoked.", messages.SUCCESS)


admin.site.unregister(Group)


@admin.register(Group)
class GroupAdmin(CheckedSelectionMixin, DjangoGroupAdmin):
    """The stock groups admin, refusing a selection no group's id could be."""
