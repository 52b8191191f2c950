"""The recipe as the run folder keeps it (``recipe.yaml``, resolved with defaults),
with keys, values and comments set apart by colour."""

from __future__ import annotations

from trimkit.report._folder import ReportRun
from trimkit.report._markup import esc, note, section


def recipe_section(run: ReportRun) -> str:
    """The resolved recipe as written to ``recipe.yaml``, keys and values set apart."""
    if run.recipe_text is None:
        return section("recipe", "Recipe", note("recipe.yaml is missing or unreadable; see “Missing or damaged”.",
                                                "warn"))
    lines = "\n".join(_yaml_line(line) for line in run.recipe_text.splitlines())
    return section("recipe", "Recipe", f'<pre class="yaml">{lines}</pre>',
                   "The resolved recipe (defaults filled in) the run was started with.")


def _yaml_line(line: str) -> str:
    body, _, comment = line.partition(" #") if not line.lstrip().startswith("#") else ("", "", line)
    stripped = body.lstrip(" ")
    indent = body[: len(body) - len(stripped)]
    dash = ""
    if stripped.startswith("- "):
        dash, stripped = "- ", stripped[2:]
    key, colon, value = stripped.partition(":")
    if colon and key and " " not in key.strip() and (not value or value.startswith(" ")):
        shown = f'<span class="k">{esc(key)}</span>:{_yaml_value(value)}'
    else:
        shown = _yaml_value(stripped)
    tail = f'<span class="c">{esc(("" if comment.startswith("#") else " #") + comment)}</span>' if comment else ""
    return f"{esc(indent)}{esc(dash)}{shown}{tail}"


def _yaml_value(value: str) -> str:
    word = value.strip()
    if not word:
        return esc(value)
    kind = "n" if word in ("null", "true", "false", "~") or _is_float(word) else "s"
    return f'{esc(value[: len(value) - len(value.lstrip())])}<span class="{kind}">{esc(word)}</span>'


def _is_float(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True
