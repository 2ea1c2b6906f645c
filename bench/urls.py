"""Logdeck's URLs plus the stock admin site, mounted only while the benchmark runs."""

from django.urls import path

from bench.stock_admin import site
from config.urls import urlpatterns as logdeck_urlpatterns

urlpatterns = [
    path("bench-stock-admin/", site.urls),
    *logdeck_urlpatterns,
]
