#!/usr/bin/env python
"""Django's command-line utility for the hub."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mdm.settings")
    try:
        from django.core.management import execute_from_command_line
    except ImportError as exc:
        raise SystemExit(
            "Django is not installed in this Python. Run `python3 dev.py demo` once (it creates .venv), "
            "then use `.venv/bin/python manage.py ...`."
        ) from exc
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
