"""Models of the user's own, named by import path as uvicorn and entry points name
callables: ``package.module:function`` or ``path/to/file.py:function``, optionally
called with keyword literals, ``mynet:MyNet(classes=7, width=0.5)``.

The working folder is importable (as for ``python -m``), so ``mynet:MyNet`` finds
``./mynet.py``. The model remembers its factory, its arguments and the SHA-256 of the
factory's source file: ``trimkit.save`` records them, and ``trimkit.load`` calls the
factory again (or says exactly what to install or put on the path).
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import importlib.util
import inspect
import os
import sys
from pathlib import Path
from collections.abc import Sequence
from typing import Any

from torch import nn

from trimkit._registry import closest
from trimkit.errors import TrimkitError
from trimkit.models._origin import ModelOrigin, Normalization, set_origin

FACTORY_HELP = "module.path:function or path/to/file.py:function, e.g. mynet:MyNet or models/mynet.py:MyNet"


def looks_like_factory(text: str) -> bool:
    """Whether ``text`` is a factory path (``a.b:c``, ``x.py:c``, with ``(...)``) rather
    than a zoo name or a file."""
    target = text.split("(", 1)[0]
    module, sep, attribute = target.rpartition(":")
    return bool(sep and module and attribute.replace("_", "a").replace(".", "a").isalnum()
                and not Path(text).exists() and len(module) > 1)  # "C:..." is a Windows drive


def parse_factory(text: str) -> tuple[str, dict[str, Any]]:
    """``mynet:MyNet(classes=7)`` -> (``mynet:MyNet``, {"classes": 7}); arguments must be
    keyword literals (numbers, strings, lists, ...): nothing in a model name runs code."""
    target, paren, rest = text.partition("(")
    if not paren:
        return target.strip(), {}
    if not rest.rstrip().endswith(")"):
        raise TrimkitError(f"factory {text!r}: unbalanced parentheses; write {target.strip()}(name=value, ...)")
    try:
        call = ast.parse(f"f({rest.rstrip()[:-1]})", mode="eval").body
        if call.args:
            raise ValueError("positional arguments")
        kwargs = {keyword.arg: ast.literal_eval(keyword.value) for keyword in call.keywords if keyword.arg}
    except (SyntaxError, ValueError):
        raise TrimkitError(f"factory {text!r}: the arguments must be name=literal pairs such as classes=7, "
                           "width=0.5 (numbers, strings, lists; nothing that runs code)") from None
    return target.strip(), kwargs


def resolve(target: str, search: Sequence[str | os.PathLike] = ()) -> tuple[Any, dict[str, str]]:
    """The callable ``target`` names, and its source file's name and SHA-256. Modules and
    relative files are looked for in the working folder, then in the ``search`` folders
    (a recipe's own folder; where a model file says its factory was read from)."""
    module_path, sep, attribute = target.rpartition(":")
    if not sep or not module_path or not attribute:
        raise TrimkitError(f"factory {target!r} is not an import path; give {FACTORY_HELP}")
    module = _import(module_path, target, [Path(folder) for folder in search])
    found: Any = module
    for part in attribute.split("."):
        if not hasattr(found, part):
            names = [name for name in dir(found) if not name.startswith("_")]
            raise TrimkitError(f"factory {target!r}: {getattr(found, '__name__', module_path)} has no "
                               f"{part!r}{closest(part, names)}")
        found = getattr(found, part)
    if not callable(found):
        raise TrimkitError(f"factory {target!r} is a {type(found).__name__}, not something to call; name the "
                           "function or class that builds the model")
    return found, source_of(module)


def build(target: str, kwargs: dict[str, Any] | None = None, *, shape: tuple[int, ...] | None = None,
          mean_std: Normalization | None = None, search: Sequence[str | os.PathLike] = ()) -> nn.Module:
    """Call the factory ``target`` with ``kwargs``; the model remembers how it was made."""
    kwargs = dict(kwargs or {})
    factory, source = resolve(target, search)
    try:
        inspect.signature(factory).bind(**kwargs)
    except TypeError as error:
        raise TrimkitError(f"factory {target!r} does not take {kwargs or 'no arguments'}: {error}") from None
    except ValueError:
        pass  # a builtin without a signature: let the call say
    model = factory(**kwargs)
    if not isinstance(model, nn.Module):
        raise TrimkitError(f"factory {target!r} returned a {type(model).__name__}, not a torch.nn.Module; name "
                           "the function or class that builds the model")
    declared = getattr(model, "input_shape", None)
    shape = shape or (tuple(int(s) for s in declared) if isinstance(declared, (tuple, list)) else None)
    return set_origin(model, ModelOrigin(factory=target, kwargs=kwargs, source=source, shape=shape,
                                         mean_std=mean_std))


def source_of(module: Any) -> dict[str, str]:
    """The file a module was read from and its SHA-256 (empty for a built-in module)."""
    file = getattr(module, "__file__", None)
    if not file or not Path(file).is_file():
        return {}
    return {"file": str(file), "sha256": hashlib.sha256(Path(file).read_bytes()).hexdigest()}


def _import(module_path: str, target: str, search: list[Path]) -> Any:
    if module_path.endswith(".py"):
        path = Path(module_path)
        found = next((folder / path for folder in search if not path.is_absolute() and not path.is_file()
                      and (folder / path).is_file()), path)
        return _import_file(found, target)
    with importable_working_folder(), importable_folders(search):
        try:
            return importlib.import_module(module_path)
        except ModuleNotFoundError as error:
            missing = error.name or module_path
            raise TrimkitError(f"factory {target!r} does not import: no module named {missing!r}; run from the "
                               f"folder that holds {missing.split('.')[0]}.py, put it on PYTHONPATH, or install "
                               "the package that provides it") from None
        except Exception as error:  # the user's module raised while importing: say which and what
            raise TrimkitError(f"factory {target!r}: importing {module_path} failed "
                               f"({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})"
                               ) from None


def _import_file(path: Path, target: str) -> Any:
    if not path.is_file():
        raise TrimkitError(f"factory {target!r}: {path} does not exist; check the path (relative to the working "
                           "folder)")
    resolved = path.resolve()
    name = f"trimkit_factory_{hashlib.sha256(str(resolved).encode()).hexdigest()[:12]}_{path.stem}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, resolved)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    with importable_working_folder(resolved.parent):
        try:
            spec.loader.exec_module(module)
        except Exception as error:
            del sys.modules[name]
            raise TrimkitError(f"factory {target!r}: running {path} failed ({type(error).__name__}: "
                               f"{str(error).splitlines()[0] if str(error) else ''})") from None
    return module


class importable_folders:
    """``folders`` on ``sys.path`` (after what is there) while the block runs."""

    def __init__(self, folders: Sequence[Path]) -> None:
        self.folders = [str(folder) for folder in folders if str(folder) not in sys.path]

    def __enter__(self) -> None:
        sys.path.extend(self.folders)

    def __exit__(self, *exc: object) -> None:
        for folder in self.folders:
            if folder in sys.path:
                sys.path.remove(folder)


class importable_working_folder:
    """The working folder (or ``folder``) first on ``sys.path`` while the block runs, as
    ``python -m`` and ``python script.py`` make it, so a user's module beside the shell
    (or beside its file) imports."""

    def __init__(self, folder: str | os.PathLike | None = None) -> None:
        self.folder = str(Path(folder or os.getcwd()))

    def __enter__(self) -> None:
        self.added = self.folder not in sys.path
        if self.added:
            sys.path.insert(0, self.folder)

    def __exit__(self, *exc: object) -> None:
        if self.added and self.folder in sys.path:
            sys.path.remove(self.folder)
