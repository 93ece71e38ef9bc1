"""Keeps the checkout clean: setuptools' build/ and *.egg-info, and cargo's build of the
library, go to a temporary directory (removed when the build step ends) instead of next to
this file and into the checkout's target/. Set CARGO_TARGET_DIR to build in a cargo target
directory of your choice instead (kept, so a later install reuses it: CI points it at the
target directory `cargo test` built). Everything else is in pyproject.toml."""

import atexit
import os
import shutil
import tempfile
from typing import Dict


def cargo_target_dir(env: Dict[str, str], scratch: str) -> str:
    """Where cargo builds the library: ``$CARGO_TARGET_DIR`` when set (and not empty), else
    ``cargo-target`` under ``scratch``, the build step's temporary directory (setuptools-rust
    runs cargo with this process's environment, and cargo honours ``CARGO_TARGET_DIR``)."""
    return env.get("CARGO_TARGET_DIR") or os.path.join(scratch, "cargo-target")


def main() -> None:
    from setuptools import setup

    scratch = tempfile.mkdtemp(prefix="pastry-py-build-")
    atexit.register(shutil.rmtree, scratch, True)
    os.environ["CARGO_TARGET_DIR"] = cargo_target_dir(dict(os.environ), scratch)
    setup(
        options={
            "build": {"build_base": os.path.join(scratch, "build")},
            "egg_info": {"egg_base": scratch},
        }
    )


if __name__ == "__main__":  # also how setuptools' build backend runs this file
    main()
