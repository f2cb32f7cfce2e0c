"""Every script under tools/ imports: a name it takes from netsem that was renamed or removed fails
here, not in a user's hands (few of the scripts run in other tests)."""

import importlib.util
import sys
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parents[1] / "tools"
SCRIPTS = sorted(TOOLS.glob("*.py")) + sorted((TOOLS / "training").glob("*.py"))


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: str(path.relative_to(TOOLS)))
def test_the_script_imports(script, monkeypatch):
    monkeypatch.syspath_prepend(str(script.parent))  # the scripts import their neighbours by name
    name = f"netsem_tool_{script.parent.name}_{script.stem}"
    spec = importlib.util.spec_from_file_location(name, script)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    assert module.__doc__, f"{script.name} says what it is for in its docstring"
