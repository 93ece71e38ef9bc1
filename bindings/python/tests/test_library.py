"""Finding the shared library: PASTRY_LIB (a file or a directory), and a clear error naming
where it looked when the library is nowhere."""

import os
import tempfile
import unittest
from pathlib import Path
from unittest import mock

from pastry import _native as N


class FindLibrary(unittest.TestCase):
    def test_pastry_lib_may_name_the_file_or_its_directory(self):
        with tempfile.TemporaryDirectory() as d:
            lib = Path(d) / N._library_name()
            lib.write_bytes(b"")
            with mock.patch.dict(os.environ, {"PASTRY_LIB": str(lib)}):
                self.assertEqual(N.find_library(), str(lib))
            with mock.patch.dict(os.environ, {"PASTRY_LIB": d}):
                self.assertEqual(N.find_library(), str(lib))

    def test_cargo_target_dir_is_searched(self):
        with tempfile.TemporaryDirectory() as d:
            lib = Path(d) / "debug" / N._library_name()
            lib.parent.mkdir()
            lib.write_bytes(b"")
            env = {k: v for k, v in os.environ.items() if k != "PASTRY_LIB"}
            env["CARGO_TARGET_DIR"] = d
            with mock.patch.dict(os.environ, env, clear=True), mock.patch.object(
                N, "_bundled", lambda: []
            ):
                self.assertEqual(N.find_library(), str(lib))

    def test_the_bundled_library_comes_before_a_checkout(self):
        with tempfile.TemporaryDirectory() as d:
            bundled = Path(d) / "_libpastry.cpython-3-x86_64-linux-gnu.so"
            bundled.write_bytes(b"")
            env = {k: v for k, v in os.environ.items() if k != "PASTRY_LIB"}
            with mock.patch.dict(os.environ, env, clear=True), mock.patch.object(
                N, "PACKAGE_DIR", Path(d)
            ):
                self.assertEqual(N.find_library(), str(bundled))

    def test_a_missing_library_is_a_clear_error(self):
        with mock.patch.dict(os.environ, {"PASTRY_LIB": "/nonexistent/libpastry.so"}):
            with self.assertRaises(N.LibraryNotFound) as e:
                N.find_library()
        text = str(e.exception)
        self.assertIn("pip install", text)
        self.assertIn("cargo build", text)
        self.assertIn("PASTRY_LIB", text)
        self.assertIn("/nonexistent/libpastry.so", text)


if __name__ == "__main__":
    unittest.main()
