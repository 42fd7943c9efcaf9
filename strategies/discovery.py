"""Discovery of strategy classes: the built-in `strategies` package and user folders.

A user strategy file is a `.py` file defining one or more `Strategy` subclasses with a
`name`. Each file is loaded under its own module name (derived from its path and the
sha256 of its bytes), so two folders may hold files of the same name and an edited file
is loaded afresh. A broken file (syntax error, import error, a bad `Param`) becomes a
`DiscoveryError`; discovery itself never raises for one.

Files whose names start with "_" or "." are skipped (keep helpers there), and folders
are scanned one level deep.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import pkgutil
import re
import sys
import threading
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from strategies.base import Strategy

__all__ = [
    "DiscoveryError",
    "DiscoveryResult",
    "StrategySpec",
    "builtin_specs",
    "describe",
    "discover",
    "file_hash",
    "load_file",
    "spec_for_class",
    "spec_of",
]

USER_MODULE_PREFIX = "bt_user_strategy_"
_LOCK = threading.Lock()
# (resolved path, code hash) -> the specs of a file that loaded cleanly; re-syncing an
# unchanged file neither re-executes it nor changes its classes' identity.
_LOADED: dict[tuple[str, str], list[StrategySpec]] = {}


@dataclass(frozen=True)
class StrategySpec:
    """One discovered strategy class and what the catalog records about it."""

    name: str
    module: str
    class_name: str
    description: str | None
    params_schema: list[dict[str, Any]]
    code_hash: str
    path: str | None = None
    """The user file it came from; None for a built-in."""
    cls: type[Strategy] | None = field(default=None, compare=False, repr=False)

    @property
    def builtin(self) -> bool:
        return self.path is None


@dataclass(frozen=True)
class DiscoveryError:
    """A file (or folder) that yielded no usable strategy; `step` says where it failed."""

    path: str
    step: str
    """"path" (missing/unreadable), "import" (the file does not load), "discover" (no
    strategy in it) or "name" (a strategy name already taken; the file's others load)."""
    message: str
    code_hash: str | None = None
    """sha256 of the file when it could be read."""


@dataclass
class DiscoveryResult:
    found: list[StrategySpec] = field(default_factory=list)
    errors: list[DiscoveryError] = field(default_factory=list)

    def by_name(self) -> dict[str, StrategySpec]:
        return {spec.name: spec for spec in self.found}


def file_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def describe(cls: type) -> str | None:
    """The first paragraph of the class's own docstring (not inherited), on one line."""
    doc = inspect.cleandoc(cls.__doc__) if cls.__doc__ else ""
    if not doc:
        return None
    return doc.split("\n\n", 1)[0].replace("\n", " ").strip() or None


def spec_for_class(cls: type[Strategy], *, path: str | None = None, code_hash: str | None = None) -> StrategySpec:
    """The spec of a class; the hash defaults to that of its module's file."""
    if code_hash is None:
        code_hash = _module_hash(cls)
    return StrategySpec(
        name=cls.name,
        module=cls.__module__,
        class_name=cls.__qualname__,
        description=describe(cls),
        params_schema=cls.params_schema(),
        code_hash=code_hash,
        path=path,
        cls=cls,
    )


def _module_hash(cls: type) -> str:
    module = sys.modules.get(cls.__module__)
    filename = getattr(module, "__file__", None)
    try:
        if filename:
            return file_hash(Path(filename).read_bytes())
    except OSError:
        pass
    try:
        return file_hash(inspect.getsource(cls).encode())
    except (OSError, TypeError):
        return file_hash(f"{cls.__module__}.{cls.__qualname__}".encode())


def _strategy_classes(module: ModuleType) -> list[type[Strategy]]:
    """Named Strategy subclasses defined in `module` itself (not imported into it)."""
    out = []
    for _, obj in inspect.getmembers(module, inspect.isclass):
        own = obj.__module__ == module.__name__
        if own and issubclass(obj, Strategy) and obj is not Strategy and obj.name:
            out.append(obj)
    return out


def builtin_specs() -> DiscoveryResult:
    """Every named Strategy subclass defined in a module of the `strategies` package."""
    import strategies

    result = DiscoveryResult()
    for info in sorted(pkgutil.iter_modules(strategies.__path__), key=lambda m: m.name):
        if info.ispkg or info.name.startswith("_"):
            continue
        name = f"strategies.{info.name}"
        try:
            module = importlib.import_module(name)
        except Exception as exc:  # a broken built-in must not hide the user's strategies
            result.errors.append(DiscoveryError(name, "import", _error_text(exc)))
            continue
        result.found.extend(spec_for_class(cls) for cls in _strategy_classes(module))
    return result


def _module_name(path: Path, digest: str) -> str:
    stem = re.sub(r"\W", "_", path.stem)
    where = hashlib.sha256(str(path).encode()).hexdigest()[:8]
    return f"{USER_MODULE_PREFIX}{stem}_{where}_{digest[:12]}"


def _error_text(exc: BaseException, path: Path | None = None) -> str:
    """One readable line: the exception, and the file line it points at when known."""
    if isinstance(exc, SyntaxError):
        where = f"line {exc.lineno}" if exc.lineno else "unknown line"
        text = (exc.text or "").strip()
        return f"SyntaxError: {exc.msg} ({where}{': ' + text if text else ''})"
    message = f"{type(exc).__name__}: {exc}"
    if path is not None:
        frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == str(path)]
        if frames:
            message += f" (line {frames[-1].lineno})"
    return message


def load_file(path: str | Path) -> tuple[list[StrategySpec], DiscoveryError | None]:
    """Load one user strategy file: (its specs, None) or ([], the error)."""
    p = Path(path).expanduser().resolve()
    try:
        data = p.read_bytes()
    except OSError as exc:
        return [], DiscoveryError(str(p), "path", f"cannot read the file: {exc}")
    digest = file_hash(data)
    with _LOCK:
        cached = _LOADED.get((str(p), digest))
        if cached is not None:
            return list(cached), None
        module_name = _module_name(p, digest)
        spec = importlib.util.spec_from_file_location(module_name, p)
        if spec is None or spec.loader is None:
            return [], DiscoveryError(str(p), "import", "not a loadable Python file", digest)
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module  # dataclasses and pickling look modules up here
        try:
            spec.loader.exec_module(module)
            classes = _strategy_classes(module)
        except BaseException as exc:  # user code may raise anything, even SystemExit
            sys.modules.pop(module_name, None)
            if isinstance(exc, KeyboardInterrupt):
                raise
            return [], DiscoveryError(str(p), "import", _error_text(exc, p), digest)
        if not classes:
            sys.modules.pop(module_name, None)
            return [], DiscoveryError(
                str(p), "discover",
                "defines no Strategy subclass with a name (subclass strategies.base.Strategy "
                "and set `name = \"...\"`)",
                digest,
            )
        specs = [spec_for_class(cls, path=str(p), code_hash=digest) for cls in classes]
        for key in [k for k in _LOADED if k[0] == str(p)]:  # an older version of this file
            for old in _LOADED.pop(key):
                sys.modules.pop(old.module, None)
        _LOADED[(str(p), digest)] = specs
        return list(specs), None


def spec_of(cls: type) -> StrategySpec | None:
    """The spec under which a user file's class was loaded (None for others)."""
    with _LOCK:
        for specs in _LOADED.values():
            for spec in specs:
                if spec.cls is cls:
                    return spec
    return None


def _files(path: Path) -> Iterable[Path]:
    if path.is_file():
        yield path
        return
    for child in sorted(path.iterdir()):
        if child.is_file() and child.suffix == ".py" and not child.name.startswith(("_", ".")):
            yield child


def discover(paths: Iterable[str | Path] = (), *, builtins: bool = True) -> DiscoveryResult:
    """Built-in strategies (unless builtins=False) plus those of each user file or folder.

    A name defined twice is kept where it was first seen (built-ins first, then `paths`
    in order, files sorted by name) and the later file gets an error naming both.
    """
    result = builtin_specs() if builtins else DiscoveryResult()
    seen = {spec.name: spec for spec in result.found}
    for raw in paths:
        base = Path(raw).expanduser()
        if not base.exists():
            result.errors.append(DiscoveryError(str(base), "path", "no such file or folder"))
            continue
        try:
            files = list(_files(base))
        except OSError as exc:
            result.errors.append(DiscoveryError(str(base), "path", f"cannot list: {exc}"))
            continue
        for file in files:
            specs, error = load_file(file)
            if error is not None:
                result.errors.append(error)
            for spec in specs:
                first = seen.get(spec.name)
                if first is not None:
                    where = "a built-in" if first.builtin else first.path
                    result.errors.append(
                        DiscoveryError(
                            spec.path or str(file), "name",
                            f"strategy name {spec.name!r} ({spec.class_name}) is already "
                            f"used by {where}; rename it",
                        )
                    )
                    continue
                seen[spec.name] = spec
                result.found.append(spec)
    return result
