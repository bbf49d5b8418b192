"""The docs say what the code does: every ``pycon`` and ``console`` block of ``docs/**/*.md`` runs
and prints what the page shows.

* ```` ```pycon ```` blocks are doctests (``>>>`` / ``...`` lines, then the expected output), run in
  page order with one namespace per page;
* ```` ```console ```` blocks hold ``$ sgdyn ARGS`` lines, each followed by its expected output; they
  run in-process through ``sgdyn.cli.main`` (what ``python -m sgdyn`` calls) and must exit 0.

Both compare with doctest's checker (``ELLIPSIS``: ``...`` stands for any text;
``NORMALIZE_WHITESPACE``). Each page runs in a fresh temporary folder, so files a page writes
(``digits.npz``, figures) are read back by its later blocks and never land in the checkout.
Other blocks (``text``, ``python`` sketches) are prose.
"""
from __future__ import annotations

import contextlib
import doctest
import io
import pathlib
import re
import shlex

import pytest

from sgdyn.cli import main

DOCS = pathlib.Path(__file__).resolve().parents[2] / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
FENCE = re.compile(r"^```(\w+)\n(.*?)^```$", re.S | re.M)
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def blocks(page: pathlib.Path):
    """``(language, text, line)`` of each fenced block of ``page``."""
    text = page.read_text()
    for m in FENCE.finditer(text):
        yield m.group(1), m.group(2), text.count("\n", 0, m.start()) + 2


def console_commands(text: str):
    """``(argv, expected output)`` pairs of a console block."""
    out, cmd, expected = [], None, []
    for line in text.splitlines():
        if line.startswith("$ "):
            if cmd is not None:
                out.append((cmd, "\n".join(expected) + "\n"))
            cmd, expected = shlex.split(line[2:]), []
        elif cmd is None:
            raise AssertionError(f"console block must start with '$ ', got {line!r}")
        else:
            expected.append(line)
    if cmd is not None:
        out.append((cmd, "\n".join(expected) + "\n"))
    return out


def run_page(page: pathlib.Path):
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    checker = doctest.OutputChecker()
    parser = doctest.DocTestParser()
    globs = {"__name__": "__docs__"}
    failures = []
    for lang, text, line in blocks(page):
        if lang == "pycon":
            test = parser.get_doctest(text, globs, f"{page.name}:{line}", str(page), line)
            report = io.StringIO()
            result = runner.run(test, out=report.write, clear_globs=False)
            globs = test.globs          # DocTest runs in a copy: carry the names to later blocks
            if result.failed:
                failures.append(report.getvalue())
        elif lang == "console":
            for argv, expected in console_commands(text):
                assert argv[0] == "sgdyn", f"{page.name}:{line}: only sgdyn commands run here"
                buf = io.StringIO()
                with contextlib.redirect_stdout(buf):
                    code = main(argv[1:])
                got = buf.getvalue()
                if code != 0 or not checker.check_output(expected, got, FLAGS):
                    failures.append(f"{page.name}:{line}: $ {shlex.join(argv)} (exit {code})\n"
                                    f"expected:\n{expected}got:\n{got}")
    return failures


def test_every_page_is_reachable_from_the_index():
    index = (DOCS / "index.md").read_text()
    for page in PAGES:
        if page.name != "index.md":
            assert str(page.relative_to(DOCS)) in index, f"{page} is not linked from docs/index.md"


def test_the_pages_have_runnable_examples():
    # the how-tos and the theory guide show code that this file runs (not prose-only pages)
    for name in ("theory.md", "howto/stability_in_a_notebook.md", "howto/your_own_data.md",
                 "gallery.md"):
        langs = {lang for lang, _, _ in blocks(DOCS / name)}
        assert langs & {"pycon", "console"}, name


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(DOCS)) for p in PAGES])
def test_page_examples_run_and_print_what_the_page_says(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    failures = run_page(page)
    assert not failures, "\n".join(failures)
