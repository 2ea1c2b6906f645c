"""What happened: sessions, their messages, the tool calls those asked for, and checkpoints."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import connection, models
from django.db.models import F, OuterRef, Q, Subquery
from django.db.models.functions import Collate
from django.utils import timezone

from agents.models import Agent, User


class SessionQuerySet(models.QuerySet["Session"]):
    def active(self) -> SessionQuerySet:
        return self.filter(finished_at__isnull=True)

    def finished(self) -> SessionQuerySet:
        return self.filter(finished_at__isnull=False)

    def with_errors(self) -> SessionQuerySet:
        return self.filter(error_count__gt=0)

    def for_agent(self, agent: Agent | int) -> SessionQuerySet:
        return self.filter(agent=agent)

    def as_rows(self) -> SessionQuerySet:
        """Dicts of the columns a list row shows, with its agent's name and its user's email: no
        metadata, agent configuration or prompt is read and decoded for a list, and no model
        instance is built for a row that a template only reads."""
        # The name and the email as subqueries rather than joins: PostgreSQL then looks them up
        # for the rows of the page alone, after its sort and limit. Joined, a search that matches
        # many sessions hashes every user and carries both columns through the sort; a plain page
        # reads 50 rows either way.
        return self.values(
            *SESSION_ROW_FIELDS,
            agent_name=Subquery(
                Agent.objects.filter(pk=OuterRef("agent_id")).order_by().values("name")
            ),
            user_email=Subquery(
                User.objects.filter(pk=OuterRef("user_id")).order_by().values("email")
            ),
        )


# What `_session_rows.html` reads besides the agent's name and the user's email; the sort keys of
# `SESSION_SORTS`, which a cursor is made of, are among them.
SESSION_ROW_FIELDS = (
    "id",
    "name",
    "platform",
    "agent_id",
    "user_id",
    "created_at",
    "finished_at",
    "message_count",
    "tool_call_count",
    "error_count",
)


class Session(models.Model):
    """One conversation of an agent, with exact counters kept by the services."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Single-column FK indexes are left out where a named composite index starts with the column.
    agent = models.ForeignKey(
        Agent, on_delete=models.CASCADE, related_name="sessions", db_index=False
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        db_index=False,
        null=True,
        blank=True,
        related_name="agent_sessions",
    )
    name = models.CharField(max_length=300, blank=True)
    platform = models.CharField(max_length=100, blank=True)
    # The framework's own name for the conversation (LangGraph's thread_id, the Agents SDK's
    # session_id): chosen by the client, unique per agent, empty when there is none.
    # A default in the database too: code from before this column, still serving during a
    # deploy, and bulk loaders that name their columns insert rows without it.
    external_key = models.CharField(max_length=255, blank=True, default="", db_default="")
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)
    last_activity_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    message_count = models.PositiveIntegerField(default=0)
    tool_call_count = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)

    objects = SessionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # Session browser and API, newest first: keyset on (created_at, id).
            models.Index(fields=["-created_at", "-id"], name="session_created_idx"),
            # Sessions of one agent / one user, newest first (the "owner, created_at DESC" lists).
            models.Index(fields=["agent", "-created_at", "-id"], name="session_agent_created_idx"),
            models.Index(fields=["user", "-created_at", "-id"], name="session_user_created_idx"),
            # Sort "most messages" and "most errors" in the session browser.
            models.Index(fields=["-message_count", "-id"], name="session_messages_idx"),
            models.Index(fields=["-error_count", "-id"], name="session_errors_idx"),
            # Active sessions (the live list, `finish`, prune's complement): small partial index.
            models.Index(
                fields=["-created_at", "-id"],
                condition=Q(finished_at__isnull=True),
                name="session_active_idx",
            ),
            # Retention: finished sessions older than a cutoff.
            models.Index(fields=["finished_at"], name="session_finished_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(error_count__lte=models.F("tool_call_count")),
                name="session_errors_within_tool_calls",
            ),
            # One session per (agent, external key). The key leads, so the same index finds a
            # key across agents (the console's search box, the admin search, the API filter).
            models.UniqueConstraint(
                fields=["external_key", "agent"],
                condition=~Q(external_key=""),
                name="session_external_key_uniq",
            ),
        ]

    def __str__(self) -> str:
        return self.name or str(self.id)

    @property
    def is_active(self) -> bool:
        return self.finished_at is None


class Role(models.TextChoices):
    SYSTEM = "system", "System"
    USER = "user", "User"
    ASSISTANT = "assistant", "Assistant"
    TOOL = "tool", "Tool"


class ContentType(models.TextChoices):
    TEXT = "text", "Text"
    TOOL_USE = "tool_use", "Tool use"
    TOOL_RESULT = "tool_result", "Tool result"


# Labels by value, for pages that show many rows: get_<field>_display() rebuilds its choices
# dict on every call, which on a transcript of a hundred messages cost more than their links.
ROLE_LABELS: dict[str, str] = dict(Role.choices)
CONTENT_TYPE_LABELS: dict[str, str] = dict(ContentType.choices)


class MessageQuerySet(models.QuerySet["Message"]):
    def without_payloads(self) -> MessageQuerySet:
        """Lists never carry the provider payload; it is loaded on demand."""
        return self.defer("raw")


class Message(models.Model):
    """One message of a session, at a gapless position `seq` (0, 1, 2, …)."""

    session = models.ForeignKey(
        Session, on_delete=models.CASCADE, related_name="messages", db_index=False
    )
    # Denormalised from the session (which never changes agent) so per-agent queries need no join.
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="+", db_index=False)
    seq = models.PositiveIntegerField()
    role = models.CharField(max_length=16, choices=Role)
    content_type = models.CharField(max_length=16, choices=ContentType, default=ContentType.TEXT)
    text_content = models.TextField(blank=True)
    media_url = models.URLField(max_length=2000, blank=True)
    model = models.CharField(max_length=200, blank=True)
    input_tokens = models.PositiveIntegerField(null=True, blank=True)
    output_tokens = models.PositiveIntegerField(null=True, blank=True)
    raw = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = MessageQuerySet.as_manager()

    class Meta:
        ordering = ["session", "seq"]
        constraints = [
            # Also the index for a transcript: messages of a session in order, paged by seq.
            models.UniqueConstraint(fields=["session", "seq"], name="message_session_seq_uniq"),
        ]
        indexes = [
            # Global message query, newest first: keyset on (created_at, id).
            models.Index(fields=["-created_at", "-id"], name="message_created_idx"),
            # Message query of one agent.
            models.Index(fields=["agent", "-created_at", "-id"], name="message_agent_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.session_id} #{self.seq} {self.role}"


class ToolCallState(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    DENIED = "denied", "Denied"
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"


STATE_LABELS: dict[str, str] = dict(ToolCallState.choices)


class ToolCallQuerySet(models.QuerySet["ToolCall"]):
    def errors(self) -> ToolCallQuerySet:
        return self.filter(is_error=True)


class ToolCall(models.Model):
    """A tool call an assistant message asked for, with its input, output and outcome."""

    session = models.ForeignKey(
        Session, on_delete=models.CASCADE, related_name="tool_calls", db_index=False
    )
    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="+", db_index=False)
    message = models.ForeignKey(
        Message, on_delete=models.CASCADE, related_name="tool_calls", null=True, blank=True
    )
    call_id = models.CharField(max_length=200, blank=True, help_text="The provider's id.")
    tool_name = models.CharField(max_length=200)
    input = models.JSONField(null=True, blank=True)
    output = models.JSONField(null=True, blank=True)
    state = models.CharField(max_length=16, choices=ToolCallState, default=ToolCallState.COMPLETED)
    is_error = models.BooleanField(default=False)
    error_message = models.TextField(blank=True)
    error_fingerprint = models.CharField(max_length=300, blank=True)
    approval = models.JSONField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = ToolCallQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["session", "call_id"],
                condition=~Q(call_id=""),
                name="toolcall_session_call_id_uniq",
            ),
            models.CheckConstraint(
                condition=Q(is_error=True) | Q(error_fingerprint=""),
                name="toolcall_fingerprint_only_on_error",
            ),
        ]
        indexes = [
            # Tool-call query, newest first, globally and per agent / per tool.
            models.Index(fields=["-created_at", "-id"], name="toolcall_created_idx"),
            models.Index(fields=["agent", "-created_at", "-id"], name="toolcall_agent_created_idx"),
            models.Index(
                fields=["tool_name", "-created_at", "-id"], name="toolcall_tool_created_idx"
            ),
            # Tool calls of a transcript page, by message.
            models.Index(fields=["session", "message"], name="toolcall_session_msg_idx"),
            # One error group's calls, newest first by keyset on (created_at, id), and the
            # recount of a group's days: only failures, a few % of the table.
            models.Index(
                fields=["tool_name", "error_fingerprint", "created_at", "id"],
                condition=Q(is_error=True),
                name="toolcall_error_group_idx",
            ),
            models.Index(
                fields=["-created_at", "-id"],
                condition=Q(is_error=True),
                name="toolcall_error_created_idx",
            ),
            # A session's latest failure in a group, looked up by every append, edit or delete
            # of a failed call (the error-group rollup); without it, all the session's calls.
            models.Index(
                fields=["session", "tool_name", "error_fingerprint", "created_at"],
                condition=Q(is_error=True),
                name="toolcall_session_error_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tool_name} ({self.state})"


class CheckpointQuerySet(models.QuerySet["Checkpoint"]):
    def latest_for(self, session: Session | str) -> Checkpoint | None:
        return self.filter(session=session).order_by("-created_at", "-id").first()

    def of_thread(self, session: Session | str, namespace: str | None = None) -> CheckpointQuerySet:
        """A session's framework checkpoints (those with a checkpoint id), in one namespace or
        in all of them."""
        thread = self.filter(session=session).exclude(checkpoint_id="")
        return thread if namespace is None else thread.filter(checkpoint_ns=namespace)


class Checkpoint(models.Model):
    """A snapshot of an agent's state within a session.

    Plain checkpoints hold JSON `data`. A framework's checkpoint (LangGraph's) also has a
    checkpoint id, unique in its namespace of the session (the thread), its parent's id, its
    metadata, and the state exactly as the framework serialized it: `state_type` names the
    serializer's format and `state` holds its bytes, given back byte for byte."""

    session = models.ForeignKey(
        Session, on_delete=models.CASCADE, related_name="checkpoints", db_index=False
    )
    type = models.CharField(max_length=100, blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # Defaults in the database too, as for Session.external_key: plain checkpoints written by
    # older code or bulk loaders leave these columns out.
    checkpoint_ns = models.CharField(
        "namespace", max_length=255, blank=True, default="", db_default=""
    )
    checkpoint_id = models.CharField(max_length=255, blank=True, default="", db_default="")
    parent_checkpoint_id = models.CharField(max_length=255, blank=True, default="", db_default="")
    metadata = models.JSONField(default=dict, blank=True, db_default={})
    state_type = models.CharField(max_length=100, blank=True, default="", db_default="")
    state = models.BinaryField(null=True, blank=True)

    objects = CheckpointQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # "Load the latest checkpoint": one index probe per session.
            models.Index(fields=["session", "-created_at", "-id"], name="checkpoint_latest_idx"),
            # A thread's checkpoints newest first across its namespaces (list without a
            # namespace, copy, prune): keyset on (checkpoint_id, id).
            models.Index(
                fields=["session", "-checkpoint_id", "-id"],
                condition=~Q(checkpoint_id=""),
                name="checkpoint_thread_idx",
            ),
        ]
        constraints = [
            # One checkpoint per id in a thread's namespace; also the index of get_tuple (by id,
            # or the latest of a namespace) and of a namespace's list, newest first.
            models.UniqueConstraint(
                fields=["session", "checkpoint_ns", "checkpoint_id"],
                condition=~Q(checkpoint_id=""),
                name="checkpoint_thread_id_uniq",
            ),
        ]

    def __str__(self) -> str:
        label = self.type or "checkpoint"
        if self.checkpoint_id:
            label = f"{label} {self.checkpoint_id}"
        return f"{label} @ {self.created_at:%Y-%m-%d %H:%M:%S}"

    @property
    def state_size(self) -> int:
        return len(self.state) if self.state is not None else 0


class CheckpointWrite(models.Model):
    """A pending write of a framework's checkpoint: what a task wrote to a channel before the
    next checkpoint, the value serialized as the framework made it (`value_type`, `value`).
    It names its checkpoint by thread (session), namespace and checkpoint id rather than by
    row: LangGraph may send a step's writes before that step's checkpoint has been stored."""

    session = models.ForeignKey(
        Session, on_delete=models.CASCADE, related_name="checkpoint_writes", db_index=False
    )
    checkpoint_ns = models.CharField("namespace", max_length=255, blank=True, default="")
    checkpoint_id = models.CharField(max_length=255)
    task_id = models.CharField(max_length=255)
    task_path = models.CharField(max_length=1000, blank=True, default="")
    # The write's position in its task; negative for LangGraph's special channels (error,
    # interrupt, resume, scheduled), which a later write of the same kind replaces.
    idx = models.IntegerField()
    channel = models.CharField(max_length=255)
    value_type = models.CharField(max_length=100, blank=True, default="")
    value = models.BinaryField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["session", "checkpoint_ns", "checkpoint_id", "task_path", "task_id", "idx"]
        constraints = [
            # A retried write is stored once; also the index of a checkpoint's writes.
            models.UniqueConstraint(
                fields=["session", "checkpoint_ns", "checkpoint_id", "task_id", "idx"],
                name="checkpointwrite_task_idx_uniq",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.checkpoint_id} {self.task_id}#{self.idx} {self.channel}"


class DailyActivity(models.Model):
    """Messages, tool calls, failed tool calls and sessions started per agent per day, kept by
    the services in the same transaction as the rows they count, so charts and stats never count
    messages, tool calls or sessions."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="+", db_index=False)
    day = models.DateField()
    # Plain integers: a delete subtracts, and a CHECK >= 0 must never be what fails a delete.
    messages = models.IntegerField(default=0)
    tool_calls = models.IntegerField(default=0)
    tool_errors = models.IntegerField(default=0)
    # The sessions started on the day, and how many of them are not finished yet. A default in
    # the database too: code from before these columns, still serving during a deploy, inserts
    # rows without them.
    sessions = models.IntegerField(default=0, db_default=0)
    active_sessions = models.IntegerField(default=0, db_default=0)

    class Meta:
        verbose_name_plural = "daily activity"
        ordering = ["-day", "agent"]
        constraints = [
            # Also the index for one agent's series (agent, day range).
            models.UniqueConstraint(fields=["agent", "day"], name="dailyactivity_agent_day_uniq"),
        ]
        indexes = [
            # The all-agents series on the overview and in the stats API: a day range.
            models.Index(fields=["day"], name="dailyactivity_day_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.agent_id} {self.day}: {self.messages} messages"


class ToolStateCount(models.Model):
    """Tool calls per agent per state, kept by the services in the same transaction as the calls
    they count, so the stats never group the tool calls themselves."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="+", db_index=False)
    state = models.CharField(max_length=16, choices=ToolCallState)
    # A plain integer, as in DailyActivity: a delete subtracts.
    calls = models.IntegerField(default=0)

    class Meta:
        ordering = ["agent", "state"]
        constraints = [
            # Also the index for one agent's states; all agents' read the whole (small) table.
            models.UniqueConstraint(fields=["agent", "state"], name="toolstatecount_key_uniq"),
        ]

    def __str__(self) -> str:
        return f"{self.agent_id} {self.state}: {self.calls} calls"


def codepoint_order(field: str) -> Collate:
    """`field` compared by code point (UTF-8 byte order), whatever the database's collation, so
    the database and Python's `max()` pick the same greatest message."""
    return Collate(F(field), "C" if connection.vendor == "postgresql" else "BINARY")


class ErrorGroupDay(models.Model):
    """Failed tool calls of one error group (tool, fingerprint) per agent per day, kept by the
    services in the same transaction as the calls they count, so the error groups, their
    sparklines and a group's numbers never scan the tool calls."""

    agent = models.ForeignKey(Agent, on_delete=models.CASCADE, related_name="+", db_index=False)
    tool_name = models.CharField(max_length=200)
    error_fingerprint = models.CharField(max_length=300)
    day = models.DateField()
    # Plain integers, as in DailyActivity: a delete subtracts.
    failures = models.IntegerField(default=0)
    # The sessions whose latest failure in this group falls on this day: a sum over the days from
    # any day on counts each session hit since then exactly once.
    sessions = models.IntegerField(default=0)
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    # The greatest of the day's error messages in code-point order (a fixed pick, so that the
    # greatest over days is the greatest over the calls): the group's sample message.
    sample_message = models.TextField(blank=True)

    class Meta:
        ordering = ["-day", "agent", "tool_name", "error_fingerprint"]
        constraints = [
            # The upsert's key; also the index for one agent's groups.
            models.UniqueConstraint(
                fields=["agent", "tool_name", "error_fingerprint", "day"],
                name="errorgroupday_key_uniq",
            ),
        ]
        indexes = [
            # The groups of all agents over a window of days (the error groups page, the API).
            models.Index(fields=["day"], name="errorgroupday_day_idx"),
            # One group's numbers and chart, across agents (a group's page).
            models.Index(
                fields=["tool_name", "error_fingerprint", "day"], name="errorgroupday_group_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tool_name} {self.day}: {self.failures} failures"
