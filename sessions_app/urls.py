"""Console URLs for sessions, transcripts and tool calls (mounted in the "console" namespace)."""

from django.urls import path

from sessions_app import views

urlpatterns = [
    path("", views.overview, name="overview"),
    path("sessions/", views.session_list_view, name="session-list"),
    path("sessions/<uuid:session_id>/", views.session_detail, name="session-detail"),
    path(
        "sessions/<uuid:session_id>/export.json",
        views.session_export,
        {"fmt": "json"},
        name="session-export-json",
    ),
    path(
        "sessions/<uuid:session_id>/export.md",
        views.session_export,
        {"fmt": "md"},
        name="session-export-md",
    ),
    path("tool-calls/<int:call_id>/", views.tool_call_detail, name="tool-call-detail"),
    path("tool-calls/errors/", views.error_groups, name="error-groups"),
    path("tool-calls/errors/group/", views.error_group, name="error-group"),
]
