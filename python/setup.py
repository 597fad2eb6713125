"""setup.py: puts libhalfs.so inside the installed halfs package.

The library comes from $HALFS_LIB when set, else from build/libhalfs.so of the source tree this
directory sits in, built there with `make build/libhalfs.so` first (a no-op when up to date).
The wheel is marked platform-specific, since it carries a shared library."""
import os
import subprocess

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class BuildPyWithLib(build_py):
    def run(self):
        super().run()
        lib = os.environ.get("HALFS_LIB")
        if not lib:
            lib = os.path.join(ROOT, "build", "libhalfs.so")
            if os.path.exists(os.path.join(ROOT, "Makefile")):
                subprocess.check_call(["make", "-C", ROOT, "build/libhalfs.so"])
        if not os.path.exists(lib):
            raise SystemExit("halfs: %s not found: run `make` in the halfs source tree, or set "
                             "HALFS_LIB to a built libhalfs.so" % lib)
        self.copy_file(lib, os.path.join(self.build_lib, "halfs", "libhalfs.so"))


class BinaryDistribution(Distribution):
    def has_ext_modules(self):
        return True


setup(cmdclass={"build_py": BuildPyWithLib}, distclass=BinaryDistribution)
