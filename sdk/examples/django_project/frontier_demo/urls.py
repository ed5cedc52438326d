"""URLs of the frontier demo project."""

from django.urls import include, path

urlpatterns = [path("", include("edges.urls"))]
