"""A Griffe extension that lets mkdocstrings render npfunc's docstrings.

npfunc's docstrings are prose with reStructuredText literals (``x``), doctest
examples (``>>>`` lines, run by the test suite) and the odd ``::`` literal
block.  Markdown would fold a doctest into a paragraph (and read its ``>>>``
as nested quotes), so this extension fences each doctest example and each
``::`` block as code before mkdocstrings renders the docstring.  Double
backticks need nothing: Markdown reads them as code spans already.

Loaded by mkdocs.yml (``extensions: [tools/griffe_docstrings.py]``).
"""
from __future__ import annotations

import griffe


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def fence(text: str) -> str:
    """``text`` with doctest examples and ``::`` literal blocks fenced as code
    (tests/test_docs.py has examples: a doctest here would read the fenced
    ``>>>`` lines of its own output as examples)."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if stripped.startswith(">>>"):
            # a doctest example runs to the next blank line (as doctest reads it)
            pad = _indent(line)
            block = []
            while i < len(lines) and lines[i].strip():
                block.append(lines[i][pad:] if _indent(lines[i]) >= pad else lines[i].lstrip())
                i += 1
            out += [" " * pad + "```pycon", *(" " * pad + b for b in block), " " * pad + "```"]
            continue
        if stripped.endswith("::") and not stripped.startswith((">>>", "...")):
            # a reST literal block: the indented lines after a blank line
            j = i + 1
            while j < len(lines) and not lines[j].strip():
                j += 1
            if j < len(lines) and _indent(lines[j]) > _indent(line):
                pad, block = _indent(lines[j]), []
                while j < len(lines) and (not lines[j].strip() or _indent(lines[j]) >= pad):
                    block.append(lines[j][pad:])
                    j += 1
                while block and not block[-1].strip():
                    block.pop()
                head = line.rstrip()[:-2].rstrip()
                out += [head + ":" if head.strip() else "", "", "```text", *block, "```", ""]
                i = j
                continue
        out.append(line)
        i += 1
    return "\n".join(out)


class DoctestFences(griffe.Extension):
    """Fence doctest examples and ``::`` blocks in every docstring Griffe loads."""

    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = fence(obj.docstring.value)
