"""Admin for people, agents and API keys. Writes go through agents.services."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import ActionLocation
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
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
    api_key_scope_check,
    api_keys_revoke_all,
)
from config.admin_bigtable import BigTableAdmin, CheckedSelectionMixin, changelist_link
from config.errors import DomainError
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


class EndUserCreationForm(forms.ModelForm):
    """What an editor may add: an end user, by email, with no password and no staff flags."""

    class Meta:
        model = User
        fields = ("email",)

    def clean_email(self) -> str:
        return _clean_unique_email(self)

    def save(self, commit: bool = True) -> User:
        user = super().save(commit=False)
        user.set_unusable_password()
        if commit:
            user.save()
        return user


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
    actions = ("revoke_api_keys",)
    revoke_keys_template = "admin/agents/user/revoke_keys.html"

    # Who may do what to people. Only a superuser sees other operators, changes or deletes an
    # operator, sets flags, groups and permissions, or sets another person's password. Editors
    # add, change and delete end users; their own password they change at /admin/password_change/.

    def get_queryset(self, request: HttpRequest) -> QuerySet[User]:
        users = super().get_queryset(request)
        if request.user.is_superuser:
            return users
        return users.filter(Q(is_staff=False, is_superuser=False) | Q(pk=request.user.pk))

    def has_change_permission(self, request: HttpRequest, obj: User | None = None) -> bool:
        if obj is not None and obj.is_operator and not request.user.is_superuser:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: User | None = None) -> bool:
        if obj is not None and obj.is_operator and not request.user.is_superuser:
            return False
        return super().has_delete_permission(request, obj)

    def get_readonly_fields(self, request: HttpRequest, obj: User | None = None) -> Any:
        readonly = tuple(super().get_readonly_fields(request, obj))
        if not request.user.is_superuser:
            readonly += OPERATOR_FIELDS
        if request.user.is_superuser and obj is not None and obj.is_operator:
            readonly += ("api_keys",)
        return readonly

    def get_fieldsets(self, request: HttpRequest, obj: User | None = None) -> Any:
        if obj is None and not request.user.is_superuser:
            return ((None, {"fields": ("email",)}),)
        fieldsets = super().get_fieldsets(request, obj)
        if request.user.is_superuser and obj is not None and obj.is_operator:
            fieldsets = (*fieldsets, ("API keys", {"fields": ("api_keys",)}))
        return fieldsets

    def get_form(
        self, request: HttpRequest, obj: User | None = None, change: bool = False, **kwargs: Any
    ) -> type[forms.ModelForm]:
        if obj is None and not request.user.is_superuser:
            kwargs["form"] = EndUserCreationForm
        return super().get_form(request, obj, change=change, **kwargs)

    def get_inlines(self, request: HttpRequest, obj: User | None) -> list[type[Any]]:
        if request.user.is_superuser and obj is not None and obj.is_operator:
            return [ApiKeyInline]
        return []

    def get_actions(
        self, request: HttpRequest, action_location: Any = ActionLocation.CHANGE_LIST
    ) -> dict[str, Any]:
        actions = super().get_actions(request, action_location)
        if not request.user.is_superuser:
            actions.pop("revoke_api_keys", None)
        return actions

    def get_deleted_objects(
        self, objs: Any, request: HttpRequest
    ) -> tuple[list[Any], dict[str, str], set[str], list[Any]]:
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        # The delete action checks no object's own permission: an operator in the selection
        # makes the whole delete refused for anyone but a superuser.
        if not request.user.is_superuser and _holds_operators(objs):
            perms_needed.add("operator")
        return deleted, counts, perms_needed, protected

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        if not request.user.is_superuser and _holds_operators(queryset):
            raise PermissionDenied("Only a superuser deletes operators.")
        super().delete_queryset(request, queryset)

    def user_change_password(
        self, request: HttpRequest, id: str, form_url: str = ""
    ) -> HttpResponse:
        if not request.user.is_superuser:
            raise PermissionDenied("Only a superuser sets another person's password.")
        return super().user_change_password(request, id, form_url)

    def get_urls(self) -> list[Any]:
        revoke = self.admin_site.admin_view(self.revoke_keys_view)
        return [
            path("<path:object_id>/revoke-keys/", revoke, name="agents_user_revoke_keys"),
            *super().get_urls(),
        ]

    @admin.display(description="Sessions")
    def sessions_link(self, user: User) -> str:
        return changelist_link(Session, "This user's sessions", user=user.pk)

    @admin.display(description="Keys")
    def api_keys(self, user: User) -> str:
        url = reverse("admin:agents_user_revoke_keys", args=[user.pk])
        return format_html(
            '{} usable key(s) listed below · <a href="{}">Revoke them all</a>',
            ApiKey.objects.filter(user=user, revoked_at__isnull=True).count(),
            url,
        )

    @admin.action(description="Revoke every API key of the selected operators")
    def revoke_api_keys(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        if not request.user.is_superuser:
            raise PermissionDenied("Only a superuser revokes another operator's keys.")
        count = sum(api_keys_revoke_all(user=user) for user in queryset.operators())
        self.message_user(request, f"{count} API key(s) revoked.", messages.SUCCESS)

    def revoke_keys_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Revoke all of one operator's keys, after a confirmation page (superusers only)."""
        if not request.user.is_superuser:
            raise PermissionDenied("Only a superuser revokes another operator's keys.")
        user = self.get_object(request, object_id)
        if user is None:
            raise Http404("No such user.")
        if request.method == "POST":
            count = api_keys_revoke_all(user=user)
            self.message_user(
                request, f"{count} API key(s) of {user.email} revoked.", messages.SUCCESS
            )
            return redirect("admin:agents_user_change", user.pk)
        return TemplateResponse(
            request,
            self.revoke_keys_template,
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "original": user,
                "keys": ApiKey.objects.filter(user=user, revoked_at__isnull=True),
                "title": f"Revoke every API key of {user.email}?",
            },
        )


OPERATOR_FIELDS = ("is_staff", "is_superuser", "groups", "user_permissions")


def _holds_operators(objs: Any) -> bool:
    if isinstance(objs, QuerySet):
        return objs.operators().exists()
    return any(obj.is_operator for obj in objs)


class ApiKeyInline(admin.TabularInline):
    """An operator's keys on their page, read only: revoke them one by one on each key's page
    or all at once with the link above."""

    model = ApiKey
    fields = ("prefix", "name", "scope", "created_at", "last_used_at", "expires_at", "revoked_at")
    readonly_fields = fields
    extra = 0
    max_num = 0
    can_delete = False
    show_change_link = True
    ordering = ("-created_at",)


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


class ApiKeyForm(forms.ModelForm):
    """A key's scope, checked against its owner's role: a viewer holds read keys only, and an
    operator with no role holds none. `owner` is set when the form has no user field."""

    owner: User | None = None

    class Meta:
        model = ApiKey
        fields = ("user", "name", "scope", "expires_at")

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        owner = data.get("user") or self.owner
        if owner is None and self.instance.user_id is not None:
            owner = self.instance.user
        if owner is not None and data.get("scope"):
            try:
                api_key_scope_check(owner=owner, scope=data["scope"])
            except DomainError as exc:
                self.add_error("scope", exc.message)
        return data


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

    # Only a superuser sees others' keys or issues one in another's name; an editor's own
    # keys are theirs to see, add, change and revoke.

    def get_queryset(self, request: HttpRequest) -> QuerySet[ApiKey]:
        keys = super().get_queryset(request)
        return keys if request.user.is_superuser else keys.filter(user=request.user)

    def get_fields(self, request: HttpRequest, obj: ApiKey | None = None) -> tuple[str, ...]:
        if obj is None:
            owner = ("user",) if request.user.is_superuser else ()
            return (*owner, "name", "scope", "expires_at")
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
        owner = None if request.user.is_superuser or obj is not None else request.user
        kwargs["form"] = type("ApiKeyForm", (ApiKeyForm,), {"owner": owner})
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
            user=form.cleaned_data.get("user") or request.user,
            scope=form.cleaned_data["scope"],
            name=form.cleaned_data["name"],
            expires_at=form.cleaned_data["expires_at"],
            issued_by=request.user,
        )
        obj.pk = issued.api_key.pk
        obj.user = issued.api_key.user
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
