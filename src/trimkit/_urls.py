"""Database URLs in messages: the password left out; errors in one line."""

from __future__ import annotations


def hide_password(url: str) -> str:
    """``postgresql://user:secret@host/db`` -> ``postgresql://user@host/db``."""
    scheme, separator, rest = url.partition("://")
    if separator and "@" in rest:
        credentials, host = rest.rsplit("@", 1)
        return f"{scheme}://{credentials.split(':', 1)[0]}@{host}"
    return url


def first_line(error: BaseException) -> str:
    """The first line of an error's message (at most 200 characters), or its type."""
    lines = str(error).strip().splitlines()
    return lines[0][:200] if lines else type(error).__name__
