"""Guard of the trainer's atomic ``torch.save`` stand-in against ESPnet's source.

``ToolkitTrainer`` replaces the name ``torch`` in ESPnet's trainer and averaging modules by
a stand-in whose ``save(obj, path)`` (two positional arguments, a path) is atomic; any other
form falls back to the real, non-atomic ``torch.save``. These tests parse ESPnet's source and
fail when a ``torch.save`` there takes a form the stand-in does not cover, so an ESPnet
upgrade cannot silently lose atomicity.
"""

import ast
import inspect
import textwrap

import espnet2.main_funcs.average_nbest_models as average_module
import espnet2.train.trainer as trainer_module
import pytest

from espnet_ser.train import trainer as toolkit_trainer

PATH_CALLS = {"str", "Path", "join"}  # str(...), Path(...), os.path.join(...)


def _is_path(node, assigned, seen=()) -> bool:
    """Whether ``node`` is an expression that gives a file path (str or Path)."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str)
    if isinstance(node, ast.JoinedStr):
        return True
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):  # path / "name"
        return _is_path(node.right, assigned, seen) or isinstance(node.right, ast.Name)
    if isinstance(node, ast.Call):
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        return name in PATH_CALLS
    if isinstance(node, ast.Name) and node.id not in seen:
        values = assigned.get(node.id)
        return bool(values) and all(
            v is not None and _is_path(v, assigned, seen + (node.id,)) for v in values)
    return False


def _assignments(func) -> dict:
    """``name -> [assigned expressions]`` in a function (None for a non-plain binding)."""
    out = {}
    for node in ast.walk(func):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    out.setdefault(target.id, []).append(node.value)
        elif isinstance(node, (ast.withitem, ast.For, ast.comprehension)):
            target = node.optional_vars if isinstance(node, ast.withitem) else node.target
            for name in ast.walk(target) if target is not None else ():
                if isinstance(name, ast.Name):
                    out.setdefault(name.id, []).append(None)
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign, ast.NamedExpr)):
            if isinstance(node.target, ast.Name):
                out.setdefault(node.target.id, []).append(getattr(node, "value", None))
    return out


def uncovered_saves(source: str) -> list:
    """Every ``torch.save`` use in ``source`` the stand-in does not make atomic, described."""
    tree = ast.parse(textwrap.dedent(source))
    problems, calls = [], []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("torch"):
            if any(a.name in ("save", "*") for a in node.names):
                problems.append(f"line {node.lineno}: from {node.module} import save")
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "torch" and alias.asname not in (None, "torch"):
                    problems.append(f"line {node.lineno}: import torch as {alias.asname}")
    functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.Module))]
    for func in functions:
        body_nodes = {id(n) for n in ast.walk(func)}
        inner = [f for f in ast.walk(func) if f is not func
                 and isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))]
        for f in inner:
            body_nodes -= {id(n) for n in ast.walk(f)}
        assigned = _assignments(func)
        for node in ast.walk(func):
            if id(node) not in body_nodes or not isinstance(node, ast.Attribute):
                continue
            if node.attr != "save" or not (isinstance(node.value, ast.Name)
                                           and node.value.id == "torch"):
                continue
            calls.append(node)
            parent = next((c for c in ast.walk(func) if isinstance(c, ast.Call)
                           and c.func is node), None)
            where = f"line {node.lineno}"
            if parent is None:
                problems.append(f"{where}: torch.save used other than as a call")
            elif parent.keywords or len(parent.args) != 2:
                problems.append(f"{where}: torch.save with other than (obj, path)")
            elif any(isinstance(a, ast.Starred) for a in parent.args):
                problems.append(f"{where}: torch.save(*args)")
            elif not _is_path(parent.args[1], assigned):
                problems.append(f"{where}: torch.save to {ast.unparse(parent.args[1])}, "
                                "not a path expression")
    return problems


@pytest.mark.parametrize("module", [trainer_module, average_module])
def test_every_torch_save_in_espnet_is_covered(module):
    source = inspect.getsource(module)
    assert "torch.save(" in source  # the patch has something to cover
    assert uncovered_saves(source) == [], (
        f"{module.__name__} calls torch.save in a form ToolkitTrainer's atomic stand-in does "
        "not cover; extend _AtomicSaveTorch.save")


def test_patched_modules_are_the_ones_checked():
    assert set(toolkit_trainer._SAVING_MODULES) == {trainer_module, average_module}
    assert trainer_module.torch.__name__ == "torch"


COVERED = '''
import torch
def run(output_dir, iepoch, states):
    torch.save(states, output_dir / "checkpoint.pth")
    torch.save(states, output_dir / f"{iepoch}epoch.pth")
    op = output_dir / f"{iepoch}.ave.pth"
    torch.save(states, op)
    torch.save(states, str(op))
'''


@pytest.mark.parametrize("body,what", [
    ("import io\nbuf = io.BytesIO()\ntorch.save(states, buf)", "not a path expression"),
    ("with open(op, 'wb') as f:\n    torch.save(states, f)", "not a path expression"),
    ("torch.save(states, op, pickle_protocol=4)", "other than (obj, path)"),
    ("torch.save(obj=states, f=op)", "other than (obj, path)"),
    ("torch.save(states, open(op, 'wb'))", "not a path expression"),
    ("torch.save(*args)", "other than (obj, path)"),
    ("save = torch.save\nsave(states, op)", "other than as a call"),
])
def test_guard_fails_on_an_uncovered_form(body, what):
    assert uncovered_saves(COVERED) == []
    source = COVERED + "    " + body.replace("\n", "\n    ") + "\n"
    problems = uncovered_saves(source)
    assert len(problems) == 1 and what in problems[0], problems


def test_guard_fails_on_imported_save():
    assert uncovered_saves("from torch import save\nsave(1, 'x')\n")
    assert uncovered_saves("import torch as th\nth.save(1, 'x')\n")
