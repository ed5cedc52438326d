from django.apps import AppConfig


class EdgesConfig(AppConfig):
    """Views that reach edges, and the ``frontier_service`` management command."""

    name = "edges"
