"""What text a client sends may not hold, wherever it comes in (the API, an import file):
control characters but tab and line breaks, zero-width and bidirectional formatting
characters (U+202E turns "gpj.exe" into "exe.jpg" on screen), and a stray BOM."""

import re

HOSTILE_TEXT = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]"
)
