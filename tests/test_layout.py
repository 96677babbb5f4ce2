"""The Python package's layout (docs/design.md, "The Python layers"): no module reaches into
another's private names, so each module's underscore names can change without a search."""
import ast
import pathlib

import fastsample

PACKAGE = pathlib.Path(fastsample.__file__).parent


def _modules():
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _private_uses(tree: ast.Module) -> list:
    """(line, text) of each private name taken from another fastsample module."""
    module_names = set()  # local names bound to fastsample modules by relative imports
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            for alias in node.names:
                if (alias.name.startswith("_") and not alias.name.startswith("__")
                        and alias.name != "_C"):
                    found.append((node.lineno, f"from {'.' * node.level}{node.module or ''} "
                                               f"import {alias.name}"))
                module_names.add(alias.asname or alias.name)
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in module_names and node.value.id != "_C"
                and node.attr.startswith("_") and not node.attr.startswith("__")):
            found.append((node.lineno, f"{node.value.id}.{node.attr}"))
    return found


def test_no_module_uses_another_modules_private_names():
    offences = []
    for path in _modules():
        for line, text in _private_uses(ast.parse(path.read_text(), str(path))):
            offences.append(f"{path.relative_to(PACKAGE)}:{line}: {text}")
    assert offences == [], "private names used across modules:\n" + "\n".join(offences)


def test_the_check_sees_a_private_use():
    tree = ast.parse("from . import arguments\nfrom .x import _y\narguments._is_int(3)\n")
    assert [text for _, text in _private_uses(tree)] == ["from .x import _y", "arguments._is_int"]


def test_layers_are_sub_packages():
    layers = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert {"kernel", "requests", "adapters", "functional", "decode", "integrations",
            "reference"} <= layers
    assert not [p.name for p in PACKAGE.glob("_*.py") if p.name not in ("__init__.py",
                                                                         "__main__.py")]
