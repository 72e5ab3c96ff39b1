"""The public faces: every name resolves, and importing costs no heavy layer."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest

PACKAGES = ["transactive", "transactive.analysis", "transactive.sim", "transactive.grid",
            "transactive.settlement", "transactive.agents", "transactive.programs",
            "transactive.markets"]
HEAVY = ["pandas", "matplotlib", "scipy.optimize", "plotly", "pydantic", "highspy"]


@pytest.mark.parametrize("package", PACKAGES)
def test_every_public_name_resolves(package):
    module = importlib.import_module(package)
    for name in module.__all__:
        value = getattr(module, name)
        assert value is not None
        # a function or class, not the module of the same name (te.audit, grid.dcopf)
        if name != "matrices":
            assert not isinstance(value, type(sys)), f"{package}.{name} is a module"
    with pytest.raises(AttributeError, match="no attribute"):
        module.no_such_name  # noqa: B018


def _loaded_after(code: str) -> list[str]:
    script = f"import sys\n{code}\nimport json\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True).stdout
    return json.loads(out.splitlines()[-1])


def test_import_transactive_loads_no_heavy_layer():
    loaded = set(_loaded_after("import transactive"))
    assert not loaded & set(HEAVY)


def test_help_loads_no_heavy_layer():
    code = ("from transactive.cli import main\n"
            "import contextlib, io\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    main(['--help'])")
    loaded = set(_loaded_after(code))
    assert not loaded & set(HEAVY)
