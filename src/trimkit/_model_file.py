"""trimkit model files: a state dict plus a small JSON header, loaded without pickle.

A file is ``torch.save({"trimkit_header": json_text, "state_dict": tensors})``. The
header names the zoo model and its arguments, its input shape and normalisation, its
sections (what the model carries beyond the zoo architecture: the edits pruning made,
the plan a quantised model was converted by, ...; see ``_sections``), and free-form
metadata, so ``load`` rebuilds the architecture with no user code and
``torch.load(weights_only=True)`` is enough to read it.

Format 2 lists the sections as ``"sections": [{"name": ..., "data": ...}, ...]``;
format 1 had the two it knew as the top-level keys ``edits`` and ``quantization``, and
is read as the same sections.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trimkit import _masks, models
from trimkit._atomic import atomic_path
from trimkit._sections import get_section, sections
from trimkit.errors import TrimkitError

HEADER_KEY = "trimkit_header"
FORMAT = "trimkit-model"
FORMAT_VERSION = 2
_STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model", "net", "weights")
_PREFIXES = ("module.", "_orig_mod.", "model.")
_VERSION_1_SECTIONS = ("edits", "quantization")  # top-level keys of format 1, in restore order


def save(model: nn.Module, path: str | os.PathLike, *, metadata: Mapping[str, Any] | None = None) -> Path:
    """Write ``model`` to ``path`` atomically: its weights and how to rebuild it.

    A zoo model, or one made by a factory (``models.from_factory``), is rebuilt by
    ``load(path)`` alone (a factory's module must import); a model built elsewhere is
    saved too, and ``load(path, model=an_instance)`` fills an instance of the same
    architecture.
    """
    payload = model_payload(model, metadata=metadata)
    with atomic_path(path) as temporary:
        torch.save(payload, temporary)
    return Path(path)


def model_payload(model: nn.Module, *, metadata: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What a model file holds, as an object ``torch.save`` writes with no pickled class:
    the JSON header and the state dict (also embedded in training checkpoints)."""
    origin = models.origin(model)
    shape = origin.input_shape() if origin is not None else None
    normalization = origin.normalization() if origin is not None else None
    header: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "trimkit_version": _version(),
        "model": None if origin is None else origin.to_header(),
        "input_shape": None if shape is None else list(shape),
        "normalization": None if normalization is None else [list(v) for v in normalization],
        "sections": _captured_sections(model),
        "metadata": dict(metadata or {}),
    }
    state_dict = {key: value.detach().cpu().contiguous() for key, value in model.state_dict().items()}
    return {HEADER_KEY: json.dumps(header), "state_dict": state_dict}


def model_from_payload(payload: Any, model: nn.Module | None = None, *, source: str = "checkpoint") -> nn.Module:
    """The model a :func:`model_payload` describes. ``model``, when given, is filled in
    place if the weights fit it; otherwise (an epoch hook pruned it since) the model is
    rebuilt from the header. A bare state dict fills ``model``."""
    header = _header(payload, source)
    if header is None:
        if model is None or not isinstance(payload, Mapping):
            raise TrimkitError(f"{source} holds no trimkit model")
        _load_state_dict(model, payload, source, model_label(model))
        return model
    if model is not None:
        try:
            _load_state_dict(model, payload["state_dict"], source, model_label(model))
            return model
        except TrimkitError:
            if header["model"] is None:
                raise
    return _rebuild(payload, header, None, source)


def read_header(path: str | os.PathLike, *, trusted: bool = False) -> dict[str, Any] | None:
    """The header of a trimkit model file, or None for any other checkpoint.

    Each section's data is also under its own name (``header["quantization"]``), where
    format 1 kept it, for code written against that format.
    """
    header = _header(_read(path, trusted), path)
    if header is not None:
        for section in header["sections"]:
            header.setdefault(section["name"], section["data"])
    return header


def load(path: str | os.PathLike, model: nn.Module | None = None, *, trusted: bool = False) -> nn.Module:
    """Rebuild the model saved at ``path`` (or fill ``model``) and load its weights. With
    ``trusted``, a whole pickled model (``torch.save(model)``) loads too, its module
    imported from the working folder as Python would."""
    content = _read(path, trusted)
    if isinstance(content, nn.Module) and model is None:
        return _unpickled(content, Path(path))
    header = _header(content, path)
    if header is None:
        raise TrimkitError(
            f"{path} is a plain checkpoint, not a trimkit model file; load it into a zoo model with "
            "trimkit.load_weights(trimkit.models.create(NAME), path), or on the command line give MODEL --weights PATH"
        )
    return _rebuild(content, header, model, path)


def _rebuild(content: Mapping[str, Any], header: dict[str, Any], model: nn.Module | None, path) -> nn.Module:
    if model is None:
        if header["model"] is None:
            raise TrimkitError(
                f"{path} holds a model built outside the zoo and not by a factory; pass an instance of its "
                "architecture: trimkit.load(path, model=MyNet()), or build it with "
                "trimkit.models.from_factory(\"mymodule:MyNet\") before saving"
            )
        model = create_from_header(header, path)
    restorers = [(get_section(entry["name"], path), entry["data"]) for entry in header["sections"]]
    for section, data in restorers:
        model = section.restore(model, data, content["state_dict"])
    _load_state_dict(model, content["state_dict"], path, model_label(model))
    return model


def load_weights(model: nn.Module, path: str | os.PathLike, *, trusted: bool = False) -> nn.Module:
    """Load a checkpoint into ``model``: a trimkit file, a bare state dict, or the
    common wrappers (``{"state_dict": ...}``, ``{"model": ...}``, ...), with the
    ``module.`` prefix of DataParallel removed. A mismatch names the keys and shapes.

    A trimkit file's weight masks (unstructured pruning) come with its weights, so that
    fine-tuning keeps the pruned weights at zero; its other sections describe a changed
    architecture, which :func:`load` rebuilds."""
    content = _read(path, trusted)
    header = _header(content, path)
    state_dict = content["state_dict"] if header is not None else _find_state_dict(content, path)
    state_dict = _strip_prefixes(state_dict, model)
    _load_state_dict(model, state_dict, path, model_label(model))
    for entry in (header or {}).get("sections", []):
        if entry["name"] == "masks":
            _masks.restore(model, entry["data"], state_dict)
    return model


def model_label(model: nn.Module) -> str:
    origin = models.origin(model)
    return origin.label if origin is not None else type(model).__name__


def _read(path: str | os.PathLike, trusted: bool) -> Any:
    source = Path(path)
    if not source.exists():
        raise TrimkitError(f"file {source} does not exist; check the path")
    if source.is_dir():
        raise TrimkitError(f"{source} is a folder, not a checkpoint; give the path of a .pt file")
    with open(source, "rb") as handle:
        head = handle.read(4)
    if not (head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"):  # torch writes ZIP, or a legacy pickle
        raise TrimkitError(f"{source} is {_what_it_is(source)}, not a PyTorch checkpoint; give a .pt file")
    try:
        if not trusted:
            return torch.load(source, map_location="cpu", weights_only=True)
        from trimkit.models._factory import importable_working_folder

        with importable_working_folder():
            return torch.load(source, map_location="cpu", weights_only=False)
    except (ModuleNotFoundError, AttributeError) as error:
        missing = getattr(error, "name", None) or str(error)
        raise TrimkitError(f"{source} pickles objects of {missing!r}, which does not import here; run from the "
                           "folder that holds its source, put it on PYTHONPATH, or install the package that "
                           "provides it") from None
    except pickle.UnpicklingError as error:
        text = str(error)
        found = re.search(r"Unsupported global: GLOBAL (\S+)", text)
        if found or ("Weights only load failed" in text and re.search(r"GLOBAL|reduce|class|persistent", text)):
            what = f" ({found.group(1)})" if found else ""
            raise TrimkitError(
                f"checkpoint {source} holds a pickled Python object{what}, and loading it could run "
                "code; if you trust its source, pass --trust-checkpoint (trusted=True in Python)"
            ) from None
        raise TrimkitError(f"{source} is a damaged pickle, not a readable PyTorch checkpoint; re-save it") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, KeyError) as error:
        raise TrimkitError(f"{source} is {_what_it_is(source)}, not a readable PyTorch checkpoint "
                           f"({_first_line(error)[:120]})") from None


def _what_it_is(source: Path) -> str:
    """What a file that torch cannot load looks like, from its first bytes."""
    head = source.read_bytes()[:4096]
    if not head:
        return "an empty file"
    if head.startswith(b"PK\x03\x04"):
        return "a ZIP archive (a damaged .pt, or a .npz)"
    if source.suffix == ".onnx" or b"onnx" in head[:256].lower() or b"pytorch" in head[:256].lower():
        return "an ONNX model (use it with trimkit bench, eval or compare)"
    if head.startswith((b"\x89PNG", b"\xff\xd8\xff")):
        return "an image"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return "a binary file of unknown kind"
    return "a text file"


def create_from_header(header: Mapping[str, Any], path) -> nn.Module:
    """The model a header names (fresh weights, no sections): a zoo model with its
    arguments, a factory's model, or the pickled model it was made from."""
    recorded = header["model"]
    found = models.ModelOrigin.from_header(recorded, header.get("input_shape"), header.get("normalization"))
    if found.name is not None:
        name, kwargs = found.name, found.kwargs
        if name not in models.names():
            raise TrimkitError(f"{path} holds a {name!r} model, which this trimkit's zoo does not have; upgrade "
                               "trimkit (or install the package whose entry point adds it), or load it into your "
                               "own instance: trimkit.load(path, model=...)")
        try:
            return models.create(name, **kwargs)
        except TypeError as error:
            raise TrimkitError(f"{path} records arguments {sorted(kwargs)} that {name} does not take ({error}); "
                               "re-save the model with this trimkit") from None
    if found.factory is not None:
        from trimkit.models._factory import build

        where = (found.source or {}).get("file")
        try:
            model = build(found.factory, found.kwargs, shape=found.shape, mean_std=found.mean_std,
                          search=[Path(where).parent] if where else [])
        except TrimkitError as error:
            raise TrimkitError(f"{path} was made by {found.factory}" + (f" (from {where})" if where else "")
                               + f": {error}") from None
        return models.set_origin(model, found)
    return _from_pickle(found, path)


def _unpickled(model: nn.Module, path: Path) -> nn.Module:
    """A whole pickled model, which remembers the file it came from (saved after pruning
    or quantisation, it is rebuilt from that file and then edited as recorded)."""
    if models.origin(model) is None:
        models.set_origin(model, models.ModelOrigin(pickle={"file": str(path.resolve()),
                                                            "sha256": _sha256(path)}))
    return model


def _from_pickle(found: Any, path) -> nn.Module:
    original = Path((found.pickle or {}).get("file", ""))
    if not original.is_file():
        raise TrimkitError(f"{path} was made from the pickled model {original}, which is not there any more; "
                           "put it back, or save the model with a factory (trimkit.models.from_factory)")
    model = _read(original, True)  # the header says where it came from; it was trusted then
    if not isinstance(model, nn.Module):
        raise TrimkitError(f"{path} was made from {original}, which no longer holds a pickled model")
    return models.set_origin(model, found)


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def _header(content: Any, path: str | os.PathLike) -> dict[str, Any] | None:
    if not (isinstance(content, Mapping) and HEADER_KEY in content):
        return None
    try:
        header = json.loads(content[HEADER_KEY])
    except (TypeError, json.JSONDecodeError):
        raise TrimkitError(f"{path} has a damaged trimkit header; re-save the model") from None
    version = header.get("format_version") if isinstance(header, dict) else None
    if not isinstance(header, dict) or header.get("format") != FORMAT or not isinstance(version, int) or version < 1:
        found = header.get("format") if isinstance(header, dict) else None
        raise TrimkitError(f"{path} has a damaged trimkit header (format {found!r}, "
                           f"version {version!r}); re-save the model")
    if version > FORMAT_VERSION:
        raise TrimkitError(
            f"{path} is trimkit model format {version}, newer than this trimkit ({FORMAT_VERSION}); upgrade trimkit"
        )
    if "state_dict" not in content or not isinstance(content["state_dict"], Mapping):
        raise TrimkitError(f"{path} has a trimkit header but no weights; re-save the model")
    model = header.get("model")
    names_it = isinstance(model, dict) and (any(isinstance(model.get(key), str) for key in ("name", "factory"))
                                            or isinstance(model.get("pickle"), dict))
    if model is not None and not (names_it and isinstance(model.get("kwargs", {}), dict)):
        raise TrimkitError(f"{path} has a damaged trimkit header (model {model!r}); re-save the model")
    if int(header.get("format_version", 0)) < 2:
        header["sections"] = [{"name": name, "data": header[name]} for name in _VERSION_1_SECTIONS if header.get(name)]
    return header


def _find_state_dict(content: Any, path: str | os.PathLike) -> Mapping[str, torch.Tensor]:
    if isinstance(content, nn.Module):
        return content.state_dict()
    if isinstance(content, Mapping):
        if content and all(isinstance(v, torch.Tensor) for v in content.values()):
            return content
        for key in _STATE_DICT_KEYS:
            inner = content.get(key)
            if isinstance(inner, nn.Module):
                return inner.state_dict()
            if isinstance(inner, Mapping) and inner and all(isinstance(v, torch.Tensor) for v in inner.values()):
                return inner
    raise TrimkitError(
        f"no state dict found in {path}: expected tensors by name, or one under "
        f"{', '.join(repr(k) for k in _STATE_DICT_KEYS)}"
    )


def _strip_prefixes(state_dict: Mapping[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    expected = set(model.state_dict())
    result = dict(state_dict)
    for prefix in _PREFIXES:
        if result and all(k.startswith(prefix) for k in result) and not set(result) & expected:
            result = {k[len(prefix):]: v for k, v in result.items()}
    return result


def _load_state_dict(model: nn.Module, state_dict: Mapping[str, torch.Tensor], path, label: str) -> None:
    own = model.state_dict()
    optional = {k for k in own if k.endswith("num_batches_tracked")}
    missing = [k for k in own if k not in state_dict and k not in optional]
    unexpected = [k for k in state_dict if k not in own]
    mismatched = [
        f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in state_dict.items()
        if k in own and tuple(v.shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or mismatched:
        problems = []
        if mismatched:
            problems.append(f"shape mismatch {_listing(mismatched)}")
        if missing:
            problems.append(f"missing keys {_listing(missing)}")
        if unexpected:
            problems.append(f"unexpected keys {_listing(unexpected)}")
        raise TrimkitError(
            f"checkpoint {path} does not fit model {label}: {'; '.join(problems)}; "
            "check the model name and --num-classes / --in-channels"
        )
    model.load_state_dict(state_dict, strict=False)


def _listing(items: list[str], limit: int = 4) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" (and {len(items) - limit} more)" if len(items) > limit else "")


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def _captured_sections(model: nn.Module) -> list[dict[str, Any]]:
    captured = [(section.name, section.capture(model)) for section in sections()]
    return [{"name": name, "data": data} for name, data in captured if data is not None]


def _version() -> str:
    from trimkit import __version__

    return __version__
