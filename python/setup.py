"""setup.py -- builds the `rerank` Python package: a CPython extension over include/rerank.h, linked with
the static libraries the repository's Makefile builds (core and hub; every object is position-independent).

    make python                                        in place, for the tests (PYTHONPATH=python)
    pip install --no-index --no-build-isolation ./python   into a virtual environment

Needs Debian's python3-dev, python3-setuptools, python3-wheel (and python3-numpy at run time for
predict()). The archives and their system libraries are named in one place below, in link order.
"""
import os
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
# the Makefile's build folder (RERANK_BUILD overrides it, e.g. build-asan), where the archives are
BUILD = os.path.abspath(os.environ.get("RERANK_BUILD", os.path.join(ROOT, "build")))
PIC = BUILD

# ---- the one place that names what the extension links ------------------------------------------
RERANK_ARCHIVES = ["librerank_hub.a", "librerank.a"]   # in link order, from BUILD (= PY_ARCHIVES in the Makefile)
SYSTEM_LIBS = ["cjson", "utf8proc", "onig", "curl", "dnnl", "m"]  # what those archives need from Debian
# --------------------------------------------------------------------------------------------------


class BuildWithLibrary(build_ext):
    """Runs `make pic` first (unless called from make itself), so a plain pip install builds the
    library too."""

    def run(self):
        if not os.environ.get("MAKELEVEL"):
            build_dir = os.path.relpath(BUILD, ROOT)
            subprocess.check_call(["make", "-C", ROOT, "BUILD=" + build_dir, "pic"])
        missing = [a for a in RERANK_ARCHIVES if not os.path.exists(os.path.join(PIC, a))]
        if missing:
            sys.exit("rerank: %s not found in %s (run `make pic` in %s)" % (", ".join(missing), PIC, ROOT))
        super().run()


ext = Extension(
    "rerank._rerank",
    sources=["rerank/_rerank.c"],
    include_dirs=[os.path.join(ROOT, "include")],  # the public header only
    extra_compile_args=["-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers",
                        "-Wno-cast-function-type"],
    # archives by path, so the static library is used whatever else is installed
    extra_objects=[os.path.join(PIC, a) for a in RERANK_ARCHIVES],
    libraries=SYSTEM_LIBS,
    extra_link_args=["-pthread", "-Wl,--as-needed"],
    depends=[os.path.join(PIC, a) for a in RERANK_ARCHIVES] + [os.path.join(ROOT, "include", "rerank.h")],
)

setup(
    name="rerank",
    version="0.1.0",
    description="In-process cross-encoder reranking (jina-reranker-v2, bge-reranker, ms-marco) over librerank",
    packages=["rerank"],
    package_data={"rerank": ["py.typed", "*.pyi"]},
    ext_modules=[ext],
    cmdclass={"build_ext": BuildWithLibrary},
    python_requires=">=3.9",
    zip_safe=False,
)
