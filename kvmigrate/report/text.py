"""Text that reaches a terminal: what came from outside (names, tags, vault messages, manifest fields) is escaped.

Key Vault names are ``0-9a-zA-Z-`` only, so a control character in a name can only come from a crafted file or a
hostile server; printed raw, an escape sequence could rewrite the terminal. Lines are built as ``rich.text.Text``
from plain strings, so nothing from outside is ever parsed as rich markup either.
"""

from __future__ import annotations

import re

from rich.console import Console
from rich.text import Text

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def safe(value: object) -> str:
    """``value`` as text with every control (and bidirectional-override) character as a visible escape."""
    text = "" if value is None else str(value)
    return _CONTROL.sub(lambda match: match.group().encode("unicode_escape").decode("ascii"), text)


def say(console: Console, *parts: str | tuple[str, str]) -> None:
    """Print one line: plain strings are escaped, ``(text, style)`` pairs are our own labels with a style."""
    line = Text()
    for part in parts:
        if isinstance(part, tuple):
            line.append(part[0], style=part[1])
        else:
            line.append(safe(part))
    console.print(line, soft_wrap=True, highlight=False)
