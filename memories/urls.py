"""Console URLs for memories (mounted in the "console" namespace)."""

from django.urls import path

from memories import views

urlpatterns = [
    path("memories/", views.memory_list_view, name="memory-list"),
    path("memories/<uuid:memory_id>/", views.memory_detail, name="memory-detail"),
]
