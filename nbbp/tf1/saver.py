"""``tf.train.Saver`` and ``tf.train.latest_checkpoint``: checkpoints in nbbp's safe format.

``saver.save(sess, "ckpt/model", global_step=100)`` writes the session's values of
the saver's variables to ``ckpt/model-100.nbbp-ckpt`` and returns
``"ckpt/model-100"`` (the prefix TF 1 returns; restore and ``latest_checkpoint`` take
it). It also writes TF 1's ``checkpoint`` index file beside it
(``model_checkpoint_path: "model-100"`` and ``all_model_checkpoint_paths`` lines),
and deletes the files of checkpoints beyond ``max_to_keep``.

The file is a zip of ``checkpoint.json`` (each variable's name and shape) and
``values.npz``, read back with the limits and checks of :mod:`nbbp.files` — loading
never runs code and never unpickles. Restoring into a graph whose variables differ
raises TF 1's errors: ``NotFoundError`` (``Key W not found in checkpoint``) or
``InvalidArgumentError`` (``Assign requires shapes of both tensors to match…``).
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from collections.abc import Mapping
from typing import Any

import numpy as np

from .. import files
from ._core import Tensor
from ._types import shape_list_str
from ._variables import Variable, global_variables
from .errors import InvalidArgumentError, NotFoundError, UsageError

FORMAT = "nbbp-tf1-checkpoint"
VERSION = 1
SUFFIX = ".nbbp-ckpt"
INDEX_MEMBER = "checkpoint.json"
VALUES_MEMBER = files.VALUES_MEMBER
STATE_FILE = "checkpoint"


class Saver:
    """Saves and restores variables (TF 1's ``tf.train.Saver``).

    ``var_list``: None (all global variables existing now), a list of variables
    (saved under their op names, ``scope/W``) or a dict ``{name: variable}``.
    ``max_to_keep``: how many recent checkpoints keep their files (None or 0: all).
    """

    def __init__(self, var_list: Any = None, reshape: bool = False, sharded: bool = False,
                 max_to_keep: int | None = 5, keep_checkpoint_every_n_hours: float = 10000.0,
                 name: str | None = None, restore_sequentially: bool = False,
                 saver_def: Any = None, builder: Any = None, defer_build: bool = False,
                 allow_empty: bool = False, write_version: Any = None,
                 pad_step_number: bool = False, save_relative_paths: bool = False,
                 filename: str | None = None) -> None:
        self._vars = _names(var_list)
        if not self._vars and not allow_empty:
            raise UsageError("No variables to save")
        self.max_to_keep = max_to_keep
        self._pad = pad_step_number
        self._last: list[str] = []

    @property
    def last_checkpoints(self) -> list[str]:
        return list(self._last)

    def __repr__(self) -> str:
        return f"<tf.train.Saver of {len(self._vars)} variables: {', '.join(self._vars)}>"

    def save(self, sess: Any, save_path: str, global_step: Any = None,
             latest_filename: str | None = None, meta_graph_suffix: str = "meta",
             write_meta_graph: bool = True, write_state: bool = True,
             strip_default_attrs: bool = False, save_debug_info: bool = False) -> str:
        """Write the values ``sess`` holds; return the checkpoint's prefix
        (``save_path`` or ``save_path-<global_step>``)."""
        if global_step is not None:
            step = sess.run(global_step) if isinstance(global_step, Tensor) else global_step
            step = int(step)
            save_path = f"{save_path}-{step:08d}" if self._pad else f"{save_path}-{step}"
        folder = os.path.dirname(os.path.abspath(save_path))
        if not os.path.isdir(folder):
            raise UsageError(f"Parent directory of {save_path} doesn't exist, can't save.")
        values = {name: sess._read(var) for name, var in self._vars.items()}
        _write(save_path + SUFFIX, values)
        if save_path in self._last:
            self._last.remove(save_path)
        self._last.append(save_path)
        if self.max_to_keep:
            while len(self._last) > self.max_to_keep:
                old = self._last.pop(0)
                if os.path.exists(old + SUFFIX):
                    os.remove(old + SUFFIX)
        if write_state:
            _write_state(folder, save_path, self._last, latest_filename or STATE_FILE)
        return save_path

    def restore(self, sess: Any, save_path: str | None) -> None:
        """Set the saver's variables in ``sess`` to the values saved at ``save_path``."""
        if save_path is None:
            raise UsageError("Can't load save_path when it is None.")
        if not os.path.exists(save_path + SUFFIX):
            raise UsageError(f"The passed save_path is not a valid checkpoint: {save_path}"
                             + _hint(save_path))
        saved = _read(save_path + SUFFIX)
        for name, var in self._vars.items():
            if name not in saved:
                raise NotFoundError(
                    "Restoring from checkpoint failed. This is most likely due to a Variable "
                    "name or other graph key that is missing from the checkpoint. Please "
                    "ensure that you have not altered the graph expected based on the "
                    f"checkpoint. Original error:\n\nKey {name} not found in checkpoint "
                    f"(it holds {', '.join(sorted(saved)) or 'no variables'})")
            if saved[name].shape != var._shape:
                raise InvalidArgumentError(
                    "Restoring from checkpoint failed. This is most likely due to a mismatch "
                    "between the current graph and the graph from the checkpoint. Please "
                    "ensure that you have not altered the graph expected based on the "
                    "checkpoint. Original error:\n\nAssign requires shapes of both tensors "
                    f"to match. lhs shape= {shape_list_str(var._shape)} rhs shape= "
                    f"{shape_list_str(saved[name].shape)} (variable '{name}')")
        for name, var in self._vars.items():
            sess._store(var, saved[name], "restore")


def _names(var_list: Any) -> dict[str, Variable]:
    if var_list is None:
        var_list = global_variables()
    if isinstance(var_list, Mapping):
        pairs = list(var_list.items())
    else:
        pairs = [(getattr(v, "op", None) and v.op.name, v) for v in var_list]
    out: dict[str, Variable] = {}
    for name, v in pairs:
        if not isinstance(v, Variable):
            raise UsageError(f"Saver's var_list holds {v!r}; it takes tf.Variable objects "
                             "(a list, or a dict from checkpoint names to variables)")
        if name in out:
            raise UsageError(f"At least two variables have the same name: {name}")
        out[name] = v
    return out


def _hint(save_path: str) -> str:
    folder = os.path.dirname(save_path) or "."
    if os.path.isdir(folder):
        found = sorted(f[:-len(SUFFIX)] for f in os.listdir(folder) if f.endswith(SUFFIX))
        if found:
            return f" (checkpoints in {folder}: {', '.join(found[-5:])})"
    return ""


def _write(path: str, values: dict[str, np.ndarray]) -> None:
    keys = {name: f"v{i}" for i, name in enumerate(values)}
    doc = {"format": FORMAT, "version": VERSION,
           "variables": [{"name": n, "key": keys[n], "shape": list(np.shape(v))}
                         for n, v in values.items()]}
    buf = io.BytesIO()
    np.savez(buf, **{keys[n]: np.asarray(v) for n, v in values.items()})   # each its dtype
    files.write_members(path, {INDEX_MEMBER: json.dumps(doc, indent=1, allow_nan=True),
                               VALUES_MEMBER: buf.getvalue()})


def _read(path: str) -> dict[str, np.ndarray]:
    """The saved arrays by variable name; a FileFormatError for anything else."""
    bad = files._bad
    with open(path, "rb") as f:
        raw = f.read(files.MAX_FILE_BYTES + 1)
    if len(raw) > files.MAX_FILE_BYTES:
        raise bad(path, f"the file is larger than {files.MAX_FILE_BYTES:,} bytes")
    files._directory(path, raw, "the archive", files.MAX_MEMBERS)
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as z:
            infos = {i.filename: i for i in
                     files._members(path, z, "the archive", files.MAX_MEMBERS)}
            if INDEX_MEMBER not in infos or VALUES_MEMBER not in infos:
                raise bad(path, f"not an nbbp.tf1 checkpoint (it needs {INDEX_MEMBER} and "
                                f"{VALUES_MEMBER})")
            text = files._member_bytes(path, z, infos[INDEX_MEMBER], "the archive",
                                       files.MAX_JSON_BYTES)
            blob = files._member_bytes(path, z, infos[VALUES_MEMBER], "the archive",
                                       files.MAX_VALUES_BYTES)
    except files.FileFormatError:
        raise
    except files._ZIP_ERRORS as exc:
        raise bad(path, f"truncated or damaged ({files._exc(exc)})") from None
    if files._depth(text) > files.MAX_JSON_DEPTH:
        raise bad(path, f"{INDEX_MEMBER} nests too deep")
    try:
        doc = json.loads(text.decode("utf-8"), parse_int=files._number_int,
                         parse_float=files._number_float)
    except (UnicodeDecodeError, json.JSONDecodeError, files._Reject) as exc:
        raise bad(path, f"{INDEX_MEMBER} is not valid JSON ({files._exc(exc)})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or doc.get("version") != VERSION:
        raise bad(path, f"not an nbbp.tf1 checkpoint of version {VERSION}")
    arrays = files._arrays(path, blob)
    out: dict[str, np.ndarray] = {}
    for entry in doc.get("variables") or []:
        if not (isinstance(entry, dict) and isinstance(entry.get("name"), str)
                and entry.get("key") in arrays
                and list(arrays[entry["key"]].shape) == entry.get("shape")):
            raise bad(path, f"{INDEX_MEMBER} lists a variable that values.npz does not hold "
                            f"as described: {files._short(entry)}")
        out[entry["name"]] = np.array(arrays[entry["key"]])   # as saved; restore casts
    return out


def _write_state(folder: str, latest: str, kept: list[str], filename: str) -> None:
    def rel(p: str) -> str:
        return os.path.basename(p) if os.path.dirname(os.path.abspath(p)) == folder else p

    lines = [f'model_checkpoint_path: "{rel(latest)}"']
    lines += [f'all_model_checkpoint_paths: "{rel(p)}"' for p in kept]
    tmp = os.path.join(folder, f".{filename}.tmp")
    with open(tmp, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, os.path.join(folder, filename))


class CheckpointState:
    """What a ``checkpoint`` index file says (TF 1's ``CheckpointState`` proto)."""

    def __init__(self, model_checkpoint_path: str, all_model_checkpoint_paths: list[str]):
        self.model_checkpoint_path = model_checkpoint_path
        self.all_model_checkpoint_paths = all_model_checkpoint_paths

    def __repr__(self) -> str:
        return f'model_checkpoint_path: "{self.model_checkpoint_path}"'


def get_checkpoint_state(checkpoint_dir: str, latest_filename: str | None = None
                         ) -> CheckpointState | None:
    """Read ``checkpoint_dir/checkpoint``; None if there is none. Relative paths in it
    are joined to ``checkpoint_dir``, as TF 1 does."""
    path = os.path.join(checkpoint_dir, latest_filename or STATE_FILE)
    if not os.path.isfile(path):
        return None
    latest, every = None, []
    with open(path, encoding="utf-8") as f:
        for line in f.read(1 << 20).splitlines():
            key, _, value = line.partition(":")
            value = value.strip()
            if len(value) < 2 or value[0] != '"' or value[-1] != '"':
                continue
            value = value[1:-1].replace('\\"', '"')
            if not os.path.isabs(value):
                value = os.path.join(checkpoint_dir, value)
            if key.strip() == "model_checkpoint_path":
                latest = value
            elif key.strip() == "all_model_checkpoint_paths":
                every.append(value)
    if latest is None:
        return None
    return CheckpointState(latest, every)


def latest_checkpoint(checkpoint_dir: str, latest_filename: str | None = None) -> str | None:
    """The prefix of the newest checkpoint in ``checkpoint_dir`` (TF 1 reads the
    ``checkpoint`` file there), or None if there is none or its file is gone."""
    state = get_checkpoint_state(checkpoint_dir, latest_filename)
    if state is None or not os.path.exists(state.model_checkpoint_path + SUFFIX):
        return None
    return state.model_checkpoint_path


def checkpoint_exists(checkpoint_prefix: str) -> bool:
    """Whether a checkpoint was saved under this prefix."""
    return os.path.exists(checkpoint_prefix + SUFFIX)


__all__ = ["CheckpointState", "Saver", "checkpoint_exists", "get_checkpoint_state",
           "latest_checkpoint"]
