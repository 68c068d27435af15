"""Safe file handling: atomic writes, restricted pickle loading, checksums."""
from __future__ import annotations

import contextlib
import hashlib
import io
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any, Iterator

from .errors import CaptionError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it over `path` only if the block succeeds.

    The temporary name keeps the suffix, so writers that check it (e.g. `.keras`) accept it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp" + path.suffix)
    os.close(fd)
    tmp_path = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def stderr_to(file: io.IOBase) -> Iterator[None]:
    """Send file descriptor 2 to `file` while the block runs: also what C libraries and child processes
    write there, which sys.stderr alone does not catch."""
    saved = os.dup(2)
    os.dup2(file.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write a text file atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def save_pickle(obj: Any, path: str | os.PathLike) -> None:
    """Pickle `obj` to `path` atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        pickle.dump(obj, f, protocol=pickle.HIGHEST_PROTOCOL)


_ALLOWED_GLOBALS = {
    ("builtins", "dict"), ("builtins", "list"), ("builtins", "tuple"), ("builtins", "set"),
    ("builtins", "str"), ("builtins", "int"), ("builtins", "float"),
    ("builtins", "bool"), ("collections", "OrderedDict"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
}


class _Refused(pickle.UnpicklingError):
    """The pickle names something other than the plain types we write."""


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise _Refused(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def load_pickle(path: str | os.PathLike) -> Any:
    """Load a pickle holding only plain data (dicts, lists, strings, numbers, numpy arrays).

    Anything else, such as a pickle crafted to run code, raises CaptionError.
    """
    path = Path(path)
    if not path.is_file():
        raise CaptionError(f"{path}: no such file")
    try:
        with open(path, "rb") as f:
            return _RestrictedUnpickler(io.BufferedReader(f)).load()
    except _Refused as e:
        raise CaptionError(f"{path}: not a plain-data pickle ({e})") from None
    except Exception as e:  # damaged pickles raise many types (EOFError, OverflowError, KeyError, ...)
        raise CaptionError(f"{path}: unreadable or truncated pickle ({type(e).__name__})") from None


def sha256_file(path: str | os.PathLike) -> str:
    """Return the hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
