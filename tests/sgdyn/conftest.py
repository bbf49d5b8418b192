import json

import pytest

from sgdyn.cli import main


@pytest.fixture
def run_json(capsys):
    """Run ``sgdyn ARGV --json`` in process; it must succeed silently on stderr and print one
    JSON object, which is returned."""
    def run(*argv):
        code = main(list(argv) + ["--json"])
        out, err = capsys.readouterr()
        assert code == 0 and err == ""
        return json.loads(out)
    return run
