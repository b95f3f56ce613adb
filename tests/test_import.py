"""``import optaxtra`` is the library without its harness.

It imports what ``import jax, optax, chex, numpy`` imports and nothing else:
the ``optaxtra compare`` command and its tasks (``optaxtra.compare``, with
flax, rich, matplotlib, scikit-learn and scipy) are an extra, and the command
says how to install it when it is missing. ``help(optaxtra)`` documents the
public API, ``__all__``.
"""

from __future__ import annotations

import importlib
import os
import pydoc
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import optaxtra

ROOT = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, JAX_PLATFORMS="cpu")
HARNESS = {"flax", "rich", "matplotlib", "sklearn", "scipy", "torch", "mnist1d"}


def _modules_after(statement: str) -> set[str]:
    """``sys.modules`` after ``statement`` in a fresh interpreter."""
    code = f"{statement}\nimport sys\nprint(' '.join(sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=ENV, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return set(done.stdout.split())


def _top_level(modules: set[str]) -> set[str]:
    return {name.partition(".")[0] for name in modules}


def test_import_optaxtra_imports_only_what_its_core_dependencies_import():
    library = _modules_after("import optaxtra")
    core = _modules_after("import chex, jax, jax.numpy, numpy, optax")
    added = _top_level(library) - _top_level(core) - set(sys.stdlib_module_names) - {"optaxtra"}
    assert not added, f"import optaxtra also imports {sorted(added)}"
    assert not _top_level(library) & HARNESS
    assert not {name for name in library if name.startswith("optaxtra.compare")}


def test_command_without_the_compare_extra_prints_one_line_saying_how_to_install_it():
    """``python -m optaxtra compare`` where ``rich`` cannot be imported (as if never installed)."""
    code = ("import runpy, sys; sys.modules['rich'] = None; sys.argv = ['optaxtra', 'compare']; "
            "runpy.run_module('optaxtra', run_name='__main__', alter_sys=True)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=ENV, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        'optaxtra: the command needs the compare extra (rich not installed): pip install "optaxtra[compare]"'
    ]
    assert done.stdout == ""


def test_pyproject_core_dependencies_extras_and_console_script():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

    def names(requirements):
        return {re.match(r"[\w.-]+", requirement).group().lower() for requirement in requirements}

    assert names(project["dependencies"]) == {"jax", "jaxlib", "optax", "chex", "numpy"}
    extras = project["optional-dependencies"]
    assert names(extras["flax"]) == {"flax"}
    assert set(extras["compare"]) | set(extras["flax"]) <= set(extras["test"])
    launcher = importlib.import_module("optaxtra.__main__")
    import_names = {"scikit-learn": "sklearn"}
    assert set(launcher.COMPARE_EXTRA) <= {import_names.get(name, name) for name in names(extras["compare"])}
    module, _, function = project["scripts"]["optaxtra"].partition(":")
    assert getattr(importlib.import_module(module), function) is launcher.main


def _sections(text: str) -> dict[str, str]:
    """pydoc's plain-text sections (``NAME``, ``CLASSES``, ...) by title."""
    return dict(re.findall(r"^([A-Z][A-Z ]+)\n(.*?)(?=^[A-Z][A-Z ]+\n|\Z)", text, re.M | re.S))


def test_help_documents_exactly_the_public_api():
    """pydoc documents the classes, functions and data named in ``__all__``; the package's
    contents (every module file, private ones included: pydoc lists them all) are described."""
    sections = _sections(pydoc.render_doc(optaxtra, renderer=pydoc.plaintext))
    documented = set(re.findall(r"^    class (\w+)\(", sections["CLASSES"], re.M))
    documented |= set(re.findall(r"^    (\w+)(?:\(| = )", sections["FUNCTIONS"], re.M))
    documented |= {name for name in re.findall(r"^    (\w+) = ", sections["DATA"], re.M) if name != "__all__"}
    assert documented == set(optaxtra.__all__)
    assert "    compare (package)\n" in sections["PACKAGE CONTENTS"]
    description = " ".join(sections["DESCRIPTION"].split())
    assert "The submodules are private, except ``optaxtra.compare``" in description


def test_names_in_the_package_docstring_exist():
    import optaxtra.compare

    for name in re.findall(r"``(\w+)``", optaxtra.__doc__):
        assert hasattr(optaxtra, name) or hasattr(optaxtra.compare, name), name


def test_the_tasks_live_in_optaxtra_compare():
    import optaxtra.compare

    assert sorted(optaxtra.compare.__all__) == [
        "Task", "charlm_task", "check_task", "digits_task", "frequency_baseline", "mnist1d_task", "reference_target",
        "time_to_target"]
    assert not any(hasattr(optaxtra, name) for name in optaxtra.compare.__all__)
