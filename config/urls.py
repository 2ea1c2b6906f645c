from django.contrib import admin
from django.urls import include, path

import agents.login
import agents.urls
import memories.urls
import sessions_app.urls
from config.api import api

admin.site.site_header = "Logdeck admin"
admin.site.site_title = "Logdeck admin"
admin.site.index_title = "Records"

# The database going away outside a view is a 503 too (config/unavailable.py).
handler500 = "config.unavailable.server_error"

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
