"""The template's own Jinja extension, which cookiecutter loads from `_extensions`.

Answers are data. Cookiecutter renders every variable's value as a Jinja
template before the hooks see it, the answers a person gives included
(`--no-input key=value`, a user config's `default_context`, a cruft update's
stored answers): `project_name="{{ 7*7 }}"` would become `49`, and
`"{% raw %}"` would stop the bake with a traceback. `AnswersAreData` turns any
value that is not one of the template's own strings into a literal, so the
hooks validate, and the files receive, exactly what was typed. Standard
library and Jinja only: this runs inside whatever runs cookiecutter.
"""

from __future__ import annotations

import json
import re
import sys
import unicodedata
from collections.abc import Iterator
from pathlib import Path

from jinja2 import Environment
from jinja2.ext import Extension

# The name of the template's top folder, as cookiecutter renders it into the project folder.
PROJECT_FOLDER = "{{cookiecutter.project_slug}}"
# Characters a refused slug keeps in the name of the folder that exists until the hook refuses it.
FOLDER_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
FOLDER_MAX_LENGTH = 100

# How many frames below cookiecutter's `render_variable` the extension's
# `preprocess` runs (from_string, compile, _parse, Parser, _tokenize, ...).
FRAMES_TO_SEARCH = 12


def template_strings(value: object) -> Iterator[str]:
    """Every string in cookiecutter.json: the only variable values that are Jinja."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from template_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from template_strings(item)


TEMPLATE_STRINGS = frozenset(
    template_strings(json.loads(Path(__file__).with_name("cookiecutter.json").read_text()))
)


def rendering_a_variable() -> bool:
    """Is cookiecutter rendering a variable's value (not a file or a path)?"""
    frame = sys._getframe(1)
    for _ in range(FRAMES_TO_SEARCH):
        frame = frame.f_back  # type: ignore[assignment]
        if frame is None:
            return False
        code = frame.f_code
        if code.co_name == "render_variable" and frame.f_globals.get("__name__") == (
            "cookiecutter.prompt"
        ):
            return True
    return False


def literal(text: str) -> str:
    """A Jinja template that renders to `text`, whatever it holds.

    Each character is an escape in a Jinja string literal: Jinja decodes
    string literals with `unicode-escape`, so no character of the answer can
    end the literal or start a tag.
    """
    return '{{ "' + "".join(f"\\U{ord(char):08x}" for char in text) + '" }}'


def columns(text: str) -> int:
    """Terminal columns `text` takes, as a linter counts line length (wide characters are 2)."""
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


def wrap_columns(text: str, width: int = 79) -> str:
    """`wordwrap` by columns rather than characters, so wide characters keep lines short."""
    lines = [""]
    for word in text.split(" "):
        if columns(f"{lines[-1]} {word}") <= width:
            lines[-1] = f"{lines[-1]} {word}"
            continue
        while columns(word) > width:  # a word longer than a line is cut, as `wordwrap` does
            cut = max(end for end in range(1, len(word)) if columns(word[:end]) <= width)
            lines.append(word[:cut])
            word = word[cut:]
        lines.append(word)
    return "\n".join(line.strip(" ") for line in lines if line.strip(" "))


def toml_character(char: str) -> str:
    """`char` as it goes in a TOML string: itself, or an escape when it is invisible."""
    return char if char.isprintable() else f"\\U{ord(char):08x}"


def non_ascii_characters(text: str) -> str:
    """The distinct non-ASCII characters of `text` as a TOML array, or "" when there are none.

    ruff flags characters that look like ASCII ones (RUF001, RUF002) in the
    code it checks; the ones a person typed into the project's name and
    description are meant, so the project's ruff configuration allows them.
    """
    characters = sorted({char for char in text if not char.isascii()})
    if not characters:
        return ""
    return "[" + ", ".join(f'"{toml_character(char)}"' for char in characters) + "]"


def project_folder(slug: str) -> str:
    """The project folder's name: the slug, or (for a slug the hook will refuse) a safe stand-in.

    Cookiecutter creates the project folder before the pre-gen hook can refuse
    the slug, and removes it when the hook does. A slug such as `a/b` would
    leave `a/` behind, `../x` would make a folder beside the output folder, an
    empty one would stop cookiecutter on the output folder itself, and one
    longer than the file system allows would stop it with a traceback. Every
    slug the hook accepts is a safe name already and is used as it is.
    """
    folder = FOLDER_UNSAFE.sub("_", slug)[:FOLDER_MAX_LENGTH]
    return folder if folder.strip(".") else f"_{folder}"


class AnswersAreData(Extension):
    """Render answers as the literal text they are; leave the template's own Jinja alone."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.filters["wrap_columns"] = wrap_columns
        environment.filters["project_folder"] = project_folder
        environment.filters["non_ascii_characters"] = non_ascii_characters

    def preprocess(self, source: str, name: str | None, filename: str | None = None) -> str:
        if name is not None:
            return source
        if source == PROJECT_FOLDER:
            return "{{ cookiecutter.project_slug | project_folder }}"
        if source not in TEMPLATE_STRINGS and rendering_a_variable():
            return literal(source)
        return source
