"""Console URLs for agents (mounted in the "console" namespace)."""

from django.urls import path

from agents import views

urlpatterns = [
    path("agents/", views.agent_list_view, name="agent-list"),
    path("agents/<int:agent_id>/", views.agent_detail, name="agent-detail"),
]
