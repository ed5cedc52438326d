"""``/edges``: list; ``/edges/<id>/call/<method>``: RPC; ``/edges/<id>/publish``: message."""

from django.urls import path

from . import views

urlpatterns = [
    path("edges", views.list_edges),
    path("edges/<int:edge_id>/call/<str:method>", views.call_edge),
    path("edges/<int:edge_id>/publish", views.publish_to_edge),
    path("healthz", views.healthz),
]
