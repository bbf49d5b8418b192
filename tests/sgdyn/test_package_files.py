"""The files that travel with the package: CITATION.cff and LICENSE agree with pyproject, and
nothing in the repository cites a file that is not in it."""
import pathlib
import re
import tomllib

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_citation_names_the_package_and_the_core_paper():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and cff["type"] == "software"
    assert cff["title"].startswith(PROJECT["name"] + ":") and cff["version"] == PROJECT["version"]
    assert cff["license"] == PROJECT["license"]["text"] == "MIT"
    (paper,) = cff["references"]
    assert [a["family-names"] for a in paper["authors"]] == ["Velikanov", "Kuznedelev", "Yarotsky"]
    assert paper["year"] == 2023 and "ICLR" in paper["conference"]["name"]
    assert paper["title"].startswith("A view of mini-batch SGD via generating functions")
    assert "arXiv:2206.11124" in [i["value"] for i in paper["identifiers"]]


def test_license_file_matches_pyproject():
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License\n") and "WITHOUT WARRANTY OF ANY KIND" in text


def test_no_reference_to_files_outside_the_repository():
    missing = "THEORY" + ".md"                 # the design notes are not part of the repository
    outside = "shared"                         # the workplace's folder beside the checkout
    pattern = re.compile(re.escape(missing) + r"|\.\./" + outside + "|/work/" + outside)
    files = [p for d in ("theory", "simulate", "sgdyn", "tests", "benchmarks", "docs")
             for p in (ROOT / d).rglob("*") if p.suffix in (".py", ".md", ".ipynb")]
    files += [ROOT / "README.md", ROOT / "pyproject.toml", ROOT / "CITATION.cff"]
    offenders = [str(p.relative_to(ROOT)) for p in files if pattern.search(p.read_text())]
    assert offenders == []
