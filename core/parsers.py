"""The API's JSON parser: what json.loads lets through but a client never means refused as
a parse error (400) rather than guessed at or crashed on: a key given twice (which value
would win?), nesting past a depth no payload of ours has (a RecursionError, a 500,
otherwise), and NaN or Infinity."""

import json
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

MAX_DEPTH = 32


def _no_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise ParseError(f"JSON parse error - the key “{key}” is given twice.")
        found[key] = value
    return found


def _no_constant(name: str) -> Any:
    raise ParseError(f"JSON parse error - {name} is not a number.")


def _depth(value: Any, level: int = 1) -> None:
    if level > MAX_DEPTH:
        raise ParseError(TOO_DEEP)
    children = (
        value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    )
    for child in children:
        if isinstance(child, dict | list):
            _depth(child, level + 1)


TOO_DEEP = f"JSON parse error - nested more than {MAX_DEPTH} levels deep."


class StrictJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None) -> Any:
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = stream.read().decode(encoding)
            data = json.loads(
                text, object_pairs_hook=_no_repeated_keys, parse_constant=_no_constant
            )
        except RecursionError:
            raise ParseError(
                f"JSON parse error - nested more than {MAX_DEPTH} levels deep."
            ) from None
        except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError among them
            raise ParseError(f"JSON parse error - {exc}") from None
        if isinstance(data, dict | list):
            _depth(data)
        return data
