"""The one compiled piece outside Numba: nbbp.core._call, a model function's common
call in C (see nbbp/core/_call.c). Everything else is in pyproject.toml."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("nbbp.core._call", ["nbbp/core/_call.c"],
                             extra_compile_args=["-O2", "-Wall"])])
