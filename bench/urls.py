"""Logdeck's URLs plus the stock admin site and the framework's empty pages, mounted only while
the benchmark runs."""

from django.urls import include, path

from bench import framework
from bench.stock_admin import site
from config.urls import urlpatterns as logdeck_urlpatterns

urlpatterns = [
    path("bench-stock-admin/", site.urls),
    path("bench-framework/", include(framework.urlpatterns)),
    *logdeck_urlpatterns,
]
