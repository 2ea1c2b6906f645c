from django.contrib import admin
from django.urls import include, path

import agents.login
import agents.urls
import memories.urls
import sessions_app.urls
from agents.api import agents_router, users_router
from agents.api_auth import READ_AUTH, docs_access
from config.api import api
from memories.api import router as memories_router
from sessions_app.api import messages_router, sessions_router, stats_router, tool_calls_router
from sessions_app.thread_api import threads_router

admin.site.site_header = "Logdeck admin"
admin.site.site_title = "Logdeck admin"
admin.site.index_title = "Records"

# The database going away outside a view is a 503 too (config/unavailable.py).
handler500 = "config.unavailable.server_error"

# Reading needs a key or a staff session, as do the schema and the docs; the API's routers, in
# the order the OpenAPI schema lists them.
api.auth = READ_AUTH
api.docs_decorator = docs_access
api.add_router("/users", users_router, tags=["users"])
api.add_router("/agents", agents_router, tags=["agents"])
api.add_router("/sessions", sessions_router, tags=["sessions"])
api.add_router("/messages", messages_router, tags=["messages"])
api.add_router("/tool-calls", tool_calls_router, tags=["tool calls"])
api.add_router("/memories", memories_router, tags=["memories"])
api.add_router("/stats", stats_router, tags=["stats"])
api.add_router("/threads", threads_router, tags=["threads"])

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    path("accounts/", include(agents.login)),
]

# The operator console: one "console" namespace over the pages each app contributes.
console_urlpatterns = [
    *sessions_app.urls.urlpatterns,
    *agents.urls.urlpatterns,
    *memories.urls.urlpatterns,
]
urlpatterns += [path("", include((console_urlpatterns, "console")))]
