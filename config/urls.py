from django.contrib import admin
from django.urls import include, path

from config.api import api

admin.site.site_header = "Logdeck admin"
admin.site.site_title = "Logdeck admin"
admin.site.index_title = "Records"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    path("accounts/", include("django.contrib.auth.urls")),
]
