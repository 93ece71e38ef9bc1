"""Keeps the checkout clean: setuptools' build/ and *.egg-info go to a temporary directory
(removed when the build step ends) instead of next to this file. Everything else is in
pyproject.toml."""

import atexit
import os
import shutil
import tempfile

from setuptools import setup

_scratch = tempfile.mkdtemp(prefix="pastry-py-build-")
atexit.register(shutil.rmtree, _scratch, True)

setup(
    options={
        "build": {"build_base": os.path.join(_scratch, "build")},
        "egg_info": {"egg_base": _scratch},
    }
)
