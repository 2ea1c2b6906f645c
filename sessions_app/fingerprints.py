"""Error fingerprints: one bug is one group, whatever ids and numbers its messages carry."""

import re

FINGERPRINT_MAX_LENGTH = 300

# Order matters: the specific shapes are masked before the bare numbers inside them.
_MASKS: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I),
        "<uuid>",
    ),
    (
        re.compile(r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?"),
        "<time>",
    ),
    (re.compile(r"\b[a-z][a-z0-9+.-]*://\S+", re.I), "<url>"),
    (re.compile(r"\b[\w.+-]+@[\w-]+(\.[\w-]+)+\b"), "<email>"),
    (re.compile(r"(?<![\w<])(?:[A-Za-z]:)?(?:[/\\][\w.@-]+){2,}[/\\]?"), "<path>"),
    (re.compile(r"\"[^\"]*\"|'[^']*'|`[^`]*`"), "<value>"),
    (re.compile(r"\b0x[0-9a-f]+\b", re.I), "<hex>"),
    (re.compile(r"\b[0-9a-f]{12,}\b", re.I), "<hex>"),
    (re.compile(r"(?<![\w<])[+-]?\d+(\.\d+)?"), "<n>"),
    (re.compile(r"\b[A-Za-z_]*\d[\w-]*\b"), "<id>"),
]
_SPACES = re.compile(r"\s+")


def error_fingerprint(message: str) -> str:
    """The error message with ids, numbers, paths and quoted values masked, spaces folded."""
    text = _SPACES.sub(" ", message).strip()
    for pattern, mask in _MASKS:
        text = pattern.sub(mask, text)
    return text[:FINGERPRINT_MAX_LENGTH] or "<empty>"
