#!/usr/bin/env python
"""Django's command-line utility for the hub."""

import os
import sys


def _streams_never_fail() -> None:
    """Output in an encoding that cannot show a character (cp1252, LC_ALL=C) shows it escaped instead of failing,
    which would come after a command's work was committed, as a traceback."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")


def _undecodable_argument() -> str | None:
    """An argument holding bytes that are not text in the locale's encoding (Python keeps them as surrogates, which
    no database or message can hold), unless it names a file that exists (a file name may be any bytes)."""
    for arg in sys.argv[1:]:
        try:
            arg.encode("utf-8")
        except UnicodeEncodeError:
            if not os.path.exists(arg):
                return arg
    return None


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mdm.settings")
    _streams_never_fail()
    bad = _undecodable_argument()
    if bad is not None:
        shown = bad.encode("utf-8", "surrogateescape").decode("ascii", "backslashreplace")
        raise SystemExit(
            f"manage.py: the argument '{shown}' is not UTF-8 text; type it again (check the terminal's encoding)"
        )
    try:
        from django.core.management import execute_from_command_line
    except ImportError as exc:
        raise SystemExit(
            "Django is not installed in this Python. Run `python3 dev.py demo` once (it creates .venv), "
            "then use `.venv/bin/python manage.py ...`."
        ) from exc
    try:
        execute_from_command_line(sys.argv)
    except BrokenPipeError:
        # the reader of the output went away (`| head`): what the command did stands; no traceback, and no second
        # error when Python flushes the closed stream at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise SystemExit(141) from None  # as a shell reports a process ended by SIGPIPE (128 + 13)


if __name__ == "__main__":
    main()
