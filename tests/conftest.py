import atexit
import os
import shutil
import tempfile

import numpy as np
import pytest

# The derived numeric forms are cached on disk (sgdyn.theory.formcache): the suite uses a cache
# of its own (shared with the subprocesses it starts), never the user's ~/.cache/sgdyn.
if "SGDYN_CACHE_DIR" not in os.environ:
    _cache = tempfile.mkdtemp(prefix="sgdyn-test-cache-")
    os.environ["SGDYN_CACHE_DIR"] = _cache
    atexit.register(shutil.rmtree, _cache, ignore_errors=True)


@pytest.fixture
def rng():
    return np.random.default_rng(20261122)
