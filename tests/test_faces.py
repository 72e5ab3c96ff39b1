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


def test_opf_loads_no_pandas_nor_pydantic():
    """``transactive opf`` (a plain DC-OPF) needs numpy, SciPy's sparse LU and
    HiGHS, nothing more: no pandas, no pydantic (typer's parameter checks), no
    rich for --json."""
    code = ("from transactive.cli import main\n"
            "import contextlib, io\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    assert main(['opf', 'case9', '--json']) == 0")
    loaded = set(_loaded_after(code))
    assert "highspy" in loaded  # it did clear
    assert not loaded & {"pandas", "pydantic", "rich", "matplotlib", "plotly", "scipy.optimize"}


def test_importing_a_submodule_keeps_the_public_face():
    """``grid.dcopf`` is the function even after ``grid/dcopf.py`` is imported
    (lazily, the import would otherwise set the package attribute to the module)."""
    code = ("import transactive.grid.dcopf, transactive.grid.scopf, transactive.grid.matrices\n"
            "import transactive.grid as g\n"
            "from transactive.grid.dcopf import dcopf\n"
            "from transactive.grid.scopf import scopf\n"
            "assert g.dcopf is dcopf and g.scopf is scopf\n"
            "assert g.matrices is transactive.grid.matrices and callable(g.matrices.ptdf)\n"
            "assert transactive.grid.network.Network is g.Network")
    _loaded_after(code)
