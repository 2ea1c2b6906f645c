"""The stock Django admin for Logdeck's biggest tables, as a team would first write it.

Registered on its own AdminSite that only the benchmark's urlconf mounts, so it is never served
by Logdeck itself. It is what the benchmark compares against: plain ModelAdmins with the usual
list_display, list_filter and search_fields, the default paginator (COUNT + OFFSET) and full
result counts. Each shows 50 rows a page, as Logdeck's console, API and admin do, so that every
row of the benchmark compares the same number of rows (Django's default would be 100).
"""

from django.contrib import admin

from sessions_app.models import Message, Session, ToolCall

PAGE = 50


class StockAdminSite(admin.AdminSite):
    site_header = "Stock Django admin (benchmark only)"


site = StockAdminSite(name="stock_admin")


@admin.register(Message, site=site)
class MessageAdmin(admin.ModelAdmin):
    list_per_page = PAGE
    list_display = ("id", "session", "seq", "role", "content_type", "created_at")
    list_filter = ("role", "content_type")
    search_fields = ("text_content",)


@admin.register(ToolCall, site=site)
class ToolCallAdmin(admin.ModelAdmin):
    list_per_page = PAGE
    list_display = ("id", "tool_name", "state", "is_error", "created_at")
    list_filter = ("is_error", "state")
    search_fields = ("tool_name", "error_message")


@admin.register(Session, site=site)
class SessionAdmin(admin.ModelAdmin):
    list_per_page = PAGE
    list_display = ("id", "name", "agent", "user", "platform", "message_count", "created_at")
    list_filter = ("agent", "platform")
    search_fields = ("name",)
