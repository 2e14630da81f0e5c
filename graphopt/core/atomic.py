"""Atomic writes: a file graphopt writes is either wholly there or not there at all.

A model is written to a temporary name beside its destination and renamed over it, so an
interrupted or failed write never leaves a half-written file, and never touches the old file
until the new one is complete. A model with external weights is two files (``m.onnx`` and
``m.onnx.data``); they are written into a temporary folder beside the destination and moved into
place together, with Ctrl-C held back for the two renames so that the pair cannot be split.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside ``path`` that replaces it only if the block completes.

    The destination's folder must exist: creating folders is the caller's decision.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a model file is as readable as any other
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_folder(destination: str | os.PathLike) -> Iterator[Path]:
    """A temporary folder beside ``destination``; on success each file written into it replaces
    the file of the same name beside ``destination``, the last one (the model) moved last."""
    destination = Path(destination)
    scratch = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", suffix=".tmp", dir=destination.parent))
    try:
        yield scratch
        written = sorted(scratch.iterdir(), key=lambda p: p.name == destination.name)
        for path in written:
            os.chmod(path, 0o666 & ~_umask())
        with signals_held():
            for path in written:
                os.replace(path, destination.parent / path.name)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back (delivered afterwards) for a few system calls that must not
    be split. A no-op off the main thread, where Python does not handle signals anyway."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_sigmask"):
        yield
        return
    held = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def check_destination(
    model_path, output_path, *, in_place: bool = False, make_dirs: bool = False, what: str = "model"
) -> None:
    """Refuse, with one line, an output that would overwrite the input or land nowhere (before
    any work is done, so a refused run costs nothing)."""
    from graphopt.core.errors import GraphoptError

    source, output = Path(model_path).resolve(), Path(output_path).resolve()
    if output.is_dir():
        raise GraphoptError(f"{output_path}: is a directory; give the output {what}'s file name")
    if output == source and not in_place:
        raise GraphoptError(f"the output {output_path} is the input {what}; pass --in-place to replace it")
    if output != source and in_place:
        raise GraphoptError("--in-place replaces the input: leave out -o, or give the input's own path")
    if not output.parent.is_dir() and not make_dirs:
        raise GraphoptError(f"output folder {output.parent} does not exist (pass --mkdir to create it)")
