"""The public API is listed once (zsampling/api.py's imports plus the built-ins) and the top level
exports exactly that: every registered built-in class, every API name, nothing that is missing."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import zsampling
import zsampling.api as api
from zsampling.plugins.builtins import BUILTINS

API_FILE = Path(api.__file__)
PLUGIN_NAMES = {  # what issue 22 asks a plugin author to find in one module
    "Component",
    "SamplingPath",
    "GuidanceContext",
    "GuidanceRule",
    "GuidanceCall",
    "Prediction",
    "LevelPoint",
    "History",
    "ZSamplingError",
    "InvalidArgument",
    "ComponentFault",
    "hookimpl",
    "Register",
}


def api_names() -> set[str]:
    return {name for name in vars(api) if not name.startswith("_")}


def test_every_registered_builtin_class_is_exported_under_its_class_name() -> None:
    for kind, classes in BUILTINS.items():
        for cls in classes:
            assert getattr(zsampling, cls.__name__, None) is cls, (kind, cls)
            assert cls.__name__ in zsampling.__all__


def test_every_export_exists_and_star_import_gives_them_all() -> None:
    names = zsampling.__all__
    assert len(names) == len(set(names)) and names == sorted(names)
    for name in names:
        assert getattr(zsampling, name) is not None, name
    namespace: dict[str, object] = {}
    exec("from zsampling import *", namespace)
    assert set(names) <= set(namespace)
    assert set(dir(zsampling)) >= set(names)


def test_the_api_module_is_the_list_and_its_names_are_all_exported() -> None:
    """api.py holds imports only (so its names are the list), each one exported at the top level
    as the same object, and no built-in class name means something else there."""
    tree = ast.parse(API_FILE.read_text(encoding="utf-8"))
    statements = [n for n in tree.body if not isinstance(n, ast.Expr)]  # the docstring aside
    assert all(isinstance(n, ast.ImportFrom) for n in statements)
    assert api_names() >= PLUGIN_NAMES
    for name in api_names():
        assert getattr(zsampling, name) is getattr(api, name), name
    builtin_names = {cls.__name__: cls for classes in BUILTINS.values() for cls in classes}
    shared = api_names() & set(builtin_names)
    assert all(getattr(api, n) is builtin_names[n] for n in shared), shared


def test_an_unknown_name_is_an_attribute_error() -> None:
    for name in ("NoSuchSampler", "__path_hooks__"):
        try:
            getattr(zsampling, name)
        except AttributeError as exc:
            assert name in str(exc)
        else:  # pragma: no cover - the assertion is the test
            raise AssertionError(name)


def test_importing_the_package_stays_light() -> None:
    """``zsampling --help`` imports the package: it must not import torch or the built-ins."""
    heavy = ("torch", "zsampling.api", "zsampling.plugins.builtins")
    code = f"import sys, zsampling; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
