"""Discovery of built-in and user strategy files: specs, code hashes, unique modules, errors."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from strategies.discovery import USER_MODULE_PREFIX, builtin_specs, discover, load_file
from strategies.registry import BUILTINS
from tests.strategies.user_files import BROKEN, GOOD, GOOD_EDITED, write


def test_builtins_are_discovered_from_the_package() -> None:
    result = builtin_specs()
    assert result.errors == []
    assert {s.cls for s in result.found} == set(BUILTINS)  # the registry lists them all
    ema = result.by_name()["ema_crossover"]
    source = Path(sys.modules["strategies.classic"].__file__ or "").read_bytes()
    assert ema.code_hash == hashlib.sha256(source).hexdigest()
    assert ema.builtin and ema.module == "strategies.classic" and ema.class_name == "EmaCrossover"
    assert ema.description and ema.description.startswith("Trades the close's fast/slow EMA")
    assert [p["name"] for p in ema.params_schema] == ["fast", "slow", "long_only"]


def test_user_file_spec(tmp_path: Path) -> None:
    path = write(tmp_path / "mine", "momentum.py", GOOD)
    result = discover([tmp_path / "mine"])
    assert result.errors == []
    spec = result.by_name()["user_momentum"]
    assert spec.path == str(path.resolve()) and not spec.builtin
    assert spec.code_hash == hashlib.sha256(path.read_bytes()).hexdigest()
    assert spec.module.startswith(USER_MODULE_PREFIX + "momentum_") and spec.class_name == "UserMomentum"
    assert spec.description == "Long after the close rose over `lookback` bars, short after it fell (a user file)."
    assert spec.params_schema == [{
        "name": "lookback", "type": "int", "default": 3, "min": 1, "max": 50, "step": None,
        "choices": None, "help": "bars to look back",
    }]
    assert spec.cls is not None and spec.cls.__module__ == spec.module
    assert spec.cls(lookback=4).params == {"lookback": 4}
    # Built-ins come first; discover(builtins=False) is the user folders alone.
    assert {s.name for s in discover([tmp_path / "mine"], builtins=False).found} == {"user_momentum"}


def test_unchanged_file_is_not_reloaded_and_a_changed_one_is(tmp_path: Path) -> None:
    path = write(tmp_path, "momentum.py", GOOD)
    (first,), _ = load_file(path)
    (again,), _ = load_file(path)
    assert again.cls is first.cls  # same bytes: same module, same class object
    path.write_text(GOOD_EDITED)
    (edited,), _ = load_file(path)
    assert edited.code_hash != first.code_hash and edited.cls is not first.cls
    assert edited.module != first.module and edited.params_schema[0]["default"] == 5
    assert first.module not in sys.modules and edited.module in sys.modules


def test_same_file_name_in_two_folders_loads_twice(tmp_path: Path) -> None:
    write(tmp_path / "a", "strat.py", GOOD)
    write(tmp_path / "b", "strat.py", GOOD.replace("user_momentum", "other_momentum"))
    result = discover([tmp_path / "a", tmp_path / "b"], builtins=False)
    assert result.errors == []
    a, b = (result.by_name()[n] for n in ("user_momentum", "other_momentum"))
    assert a.module != b.module and a.cls is not b.cls


def test_broken_files_become_errors_never_exceptions(tmp_path: Path) -> None:
    folder = tmp_path / "strats"
    for name, (source, _, _) in BROKEN.items():
        write(folder, name, source)
    write(folder, "good.py", GOOD)
    write(folder, "_helpers.py", "raise RuntimeError('never imported')\n")
    write(folder, "notes.txt", "not python")
    write(folder, "nothing.py", "X = 1\n")
    write(folder, "exits.py", "raise SystemExit(3)\n")
    write(folder, "zz_dup.py", GOOD.replace("UserMomentum", "Again"))
    write(folder, "taken.py", GOOD.replace("user_momentum", "ema_crossover"))
    result = discover([folder, tmp_path / "nowhere"])
    errors = {Path(e.path).name: e for e in result.errors}
    assert errors["syntax_error.py"].step == "import"
    assert "SyntaxError" in errors["syntax_error.py"].message
    assert "line 8" in errors["syntax_error.py"].message
    assert errors["import_error.py"].message == (
        "ModuleNotFoundError: No module named 'no_such_package_for_tests' (line 2)"
    )
    assert errors["exits.py"].step == "import" and "SystemExit" in errors["exits.py"].message
    assert errors["nothing.py"].step == "discover" and "no Strategy subclass" in errors["nothing.py"].message
    assert errors["zz_dup.py"].step == "name" and "good.py" in errors["zz_dup.py"].message
    assert errors["taken.py"].step == "name" and "built-in" in errors["taken.py"].message
    assert errors["nowhere"].step == "path"
    assert errors["syntax_error.py"].code_hash == hashlib.sha256(
        (folder / "syntax_error.py").read_bytes()
    ).hexdigest()
    assert set(errors) == {
        "syntax_error.py", "import_error.py", "exits.py", "nothing.py", "zz_dup.py", "taken.py",
        "nowhere",
    }
    found = result.by_name()
    # Files that load are found even when their strategy is broken at run time.
    assert {"user_momentum", "wrong_length", "peeks_ahead", "nan_signals"} <= set(found)
    assert found["user_momentum"].path == str((folder / "good.py").resolve())
    assert found["ema_crossover"].builtin
    broken = str((folder / "syntax_error.py").resolve())  # a failed load leaves no module behind
    assert not any(getattr(m, "__file__", None) == broken for m in list(sys.modules.values()))


def test_a_single_file_path_and_imported_classes(tmp_path: Path) -> None:
    source = GOOD + "\nfrom strategies.classic import EmaCrossover  # imported, not defined here\n"
    path = write(tmp_path, "one.py", source)
    result = discover([path], builtins=False)
    assert [s.name for s in result.found] == ["user_momentum"]
