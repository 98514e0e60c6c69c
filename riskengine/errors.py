"""The one exception for bad user input, in a leaf module (imports nothing of the project).

Library code raises it, or plain ``ValueError``/``TypeError`` in its own terms; the job
boundary (:mod:`riskengine.cli`) prints it as one line ``error: <message>`` and exits 2.
"""

from __future__ import annotations

MAX_MESSAGE = 300


class ConfigError(ValueError):
    """Bad user input: the message is one line naming the field and the value."""


def one_line(message: str, *, limit: int = MAX_MESSAGE) -> str:
    """``message`` on one line, cut to ``limit`` characters (a 1 MB value in a field must
    not be echoed whole)."""
    text = " ".join(str(message).split())
    if len(text) > limit:
        text = text[: limit - 20].rstrip() + f" … [{len(text)} chars]"
    return text
