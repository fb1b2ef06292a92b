"""The documentation site (mkdocs.yml, docs/): every code block on every page
runs, every page is in the navigation, and the API reference names every
public name.

A ``python`` (or ``pycon``) block holding ``>>>`` lines runs as a doctest; any
other ``python`` block runs as a script.  The blocks of a page share one
namespace, in page order, as ``doctest.testfile`` would.  Pages whose doctests
another test already runs with ``doctest.testfile`` (docs/nn.md in
tests/test_examples.py, ...) only have their script blocks run here.  Shell
blocks (``bash``) and ``text`` blocks are not run.  ``mkdocs build --strict``
(broken links, missing references) runs in .ci/run.
"""
from __future__ import annotations

import doctest
import importlib
import importlib.util
import pathlib
import re
import warnings

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))
FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[\w+-]*)[^\n]*\n(?P<code>.*?)^(?P=indent)```[ \t]*$",
                   re.S | re.M)
RUN = {"python", "pycon", "py"}
SHOWN = {"bash", "text", "console", "yaml", "toml", ""}
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def code_blocks(text: str) -> list[tuple[str, str, int]]:
    """``(language, code, line)`` of every fenced block of a page."""
    found = []
    for m in FENCE.finditer(text):
        pad = len(m["indent"])
        code = "\n".join(line[pad:] for line in m["code"].split("\n"))
        found.append((m["lang"], code, text.count("\n", 0, m.start()) + 2))
    return found


def doctested_elsewhere() -> set[str]:
    """Pages another test runs with ``doctest.testfile``."""
    pages = set()
    for test in (ROOT / "tests").glob("test_*.py"):
        source = test.read_text()
        if test.name != "test_docs.py" and "doctest.testfile" in source:
            pages |= {name for name in re.findall(r"[\"'](\w+\.md)[\"']", source)}
    return pages


def test_code_blocks_are_found():
    page = "Text.\n\n```python\n>>> 1 + 1\n2\n```\n\n  ```bash\n  pip install npfunc\n  ```\n"
    assert code_blocks(page) == [("python", ">>> 1 + 1\n2\n", 4), ("bash", "pip install npfunc\n", 9)]


@pytest.mark.parametrize("page", PAGES)
def test_every_code_block_runs(page, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # a page that writes a file writes it here
    elsewhere = page in doctested_elsewhere()
    globs = {"__name__": f"docs.{page}"}
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    parser = doctest.DocTestParser()
    ran = 0
    with warnings.catch_warnings():
        for lang, code, line in code_blocks((DOCS / page).read_text()):
            assert lang in RUN | SHOWN, f"{page}:{line}: a ```{lang} block (use python, bash or text)"
            if lang not in RUN or code.startswith("# not run"):  # (the comment says what runs it)
                continue
            if ">>>" in code:
                if elsewhere:
                    continue
                test = parser.get_doctest(code, globs, f"{page}:{line}", str(DOCS / page), line - 1)
                test.globs = globs  # (get_doctest copies them): later blocks see this one's names
                runner.run(test, clear_globs=False)
            else:
                exec(compile(code, f"{page}:{line}", "exec"), globs)  # noqa: S102  (the page's own code)
            ran += 1
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{page}: {result.failed} doctest example(s) failed (output above)"


def nav_pages() -> list[str]:
    return re.findall(r"^\s*-\s+(?:[^:\n]+:\s+)?([\w/.-]+\.md)\s*$", (ROOT / "mkdocs.yml").read_text(), re.M)


def test_every_page_is_in_the_nav_once():
    nav = nav_pages()
    assert sorted(nav) == sorted(set(nav)), "a page appears twice in mkdocs.yml's nav"
    missing = sorted(set(PAGES) - set(nav))
    assert not missing, f"pages missing from mkdocs.yml's nav: {missing}"
    # (a nav entry without its page fails `mkdocs build --strict`)


# The API reference: every public name of these modules has a `::: module.name` entry
# in docs/api/ (npfunc.numpy has a summary: its functions are NumPy's, see docs/coverage.md;
# a class re-exported from SciPy is SciPy's to document).
REFERENCED = ["npfunc", "npfunc.nn", "npfunc.nn.functional", "npfunc.optim", "npfunc.random",
              "npfunc.autograd", "npfunc.autograd.functional", "npfunc.gradcheck", "npfunc.errors",
              "npfunc.scipy.special", "npfunc.scipy.linalg", "npfunc.scipy.stats", "npfunc.scipy.signal",
              "npfunc.scipy.optimize", "npfunc.scipy.integrate"]
NUMPY_OWN = ["stop_gradient", "set_at", "add_at", "array", "asarray"]


def api_entries() -> set[str]:
    text = "\n".join(p.read_text() for p in (DOCS / "api").glob("*.md"))
    return set(re.findall(r"^::: ([\w.]+)\s*$", text, re.M))


@pytest.mark.parametrize("name", REFERENCED)
def test_api_reference_names_every_public_name(name):
    module = importlib.import_module(name)
    entries = api_entries()
    missing = []
    for member in module.__all__:
        obj = getattr(module, member)
        if isinstance(obj, type(module)):  # a submodule: documented on its own
            continue
        if f"{name}.{member}" not in entries and (getattr(obj, "__module__", None) or "").startswith("npfunc"):
            missing.append(member)
    assert not missing, f"docs/api/ has no `::: {name}.<name>` entry for {missing}: run python tools/api_pages.py"


def test_api_reference_summarises_npfunc_numpy():
    entries = api_entries()
    assert not [n for n in NUMPY_OWN if f"npfunc.numpy.{n}" not in entries]
    text = (DOCS / "api" / "numpy.md").read_text()
    assert "coverage.md" in text


@pytest.mark.parametrize("name", REFERENCED)
def test_public_functions_are_found_where_they_say_they_live(name):
    """mkdocstrings (and pickle, so Dask workers) find a function by its
    ``__module__`` and ``__qualname__``: they must lead back to it."""
    import pickle
    import sys
    import types

    module = importlib.import_module(name)
    lost = []
    for member in module.__all__:
        obj = getattr(module, member)
        if isinstance(obj, types.FunctionType):
            home = sys.modules.get(obj.__module__)
            if getattr(home, obj.__qualname__, None) is not obj or pickle.loads(pickle.dumps(obj)) is not obj:
                lost.append(f"{member} ({obj.__module__}.{obj.__qualname__})")
    assert not lost, f"{name}: {lost}"


def test_gallery_script_makes_a_figure(tmp_path):
    """tools/gallery.py runs an example and saves its figure (the NTK one: the quickest)."""
    pytest.importorskip("matplotlib")
    spec = importlib.util.spec_from_file_location("npfunc_gallery", ROOT / "tools" / "gallery.py")
    gallery = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gallery)
    written = gallery.main(["--only", "ntk", "--small", "--out", str(tmp_path)])
    assert [p.name for p in written] == ["ntk.png"] and written[0].stat().st_size > 10_000
    figures = set(re.findall(r"\]\((\w+\.png)\)", (DOCS / "gallery" / "index.md").read_text()))
    assert figures == {f"{name}.png" for name in gallery.FIGURES}  # every figure shown, and made by the script


def test_griffe_extension_fences_doctests():
    """tools/griffe_docstrings.py (mkdocstrings renders docstrings through it)."""
    pytest.importorskip("griffe")
    spec = importlib.util.spec_from_file_location("npfunc_griffe_docstrings", ROOT / "tools" / "griffe_docstrings.py")
    ext = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ext)
    assert doctest.testmod(ext).failed == 0
    text = "Example::\n\n    a = 1\n\nThen:\n\n    >>> f(1)\n    2\n"
    assert ext.fence(text) == "Example:\n\n```text\na = 1\n```\n\nThen:\n\n    ```pycon\n    >>> f(1)\n    2\n    ```\n"
