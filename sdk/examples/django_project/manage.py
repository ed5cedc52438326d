#!/usr/bin/env python
"""Django's command-line utility for the frontier demo project.

    python manage.py runserver                 # the views (they call edges)
    python manage.py frontier_service          # the long-lived service side
"""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "frontier_demo.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
