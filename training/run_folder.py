"""A run's folder, protected: one process at a time, and never two configurations mixed.

- `DIR/.lock` holds the process id of the run using the folder; a second run
  refuses with one line while that process lives, and clears the lock of a
  process that is gone.
- `DIR/config.json` names the configuration the folder holds. A run with
  another one refuses unless asked to overwrite; a rerun of the same one
  resumes from the backup, or says the run is complete.
- `DIR/complete.json`, written last, marks a run whose outputs are all written.
"""

import contextlib
import json
import os
import shutil

LOCK = ".lock"
CONFIG = "config.json"
COMPLETE = "complete.json"
# Options that do not change what a run computes: how it prints, where the
# folder is, whether it may replace the folder's run.
NOT_COMPARED = ("verbose", "out", "overwrite")


class RunFolderError(ValueError):
    """The run folder is in use or holds another run."""


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a process of another user
        return True
    return True


def _take_lock(folder):
    path = os.path.join(folder, LOCK)
    for _ in range(2):
        try:
            descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                with open(path) as f:
                    pid = int(f.read().strip() or 0)
            except (OSError, ValueError):
                pid = 0
            if pid and pid != os.getpid() and _alive(pid):
                raise RunFolderError(
                    f"{folder} is in use by process {pid} ({path}); wait for it to end or choose another --out."
                ) from None
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)  # the lock of a process that is gone
            continue
        with os.fdopen(descriptor, "w") as f:
            f.write(f"{os.getpid()}\n")
        return path
    raise RunFolderError(f"Could not lock {folder}: {path} keeps reappearing; another run may be starting there.")


def _differences(held, config):
    config = json.loads(json.dumps(config))  # as config.json holds it: lists, not tuples
    keys = sorted((set(held) | set(config)) - set(NOT_COMPARED))
    return [f"{key}: {held.get(key)!r} -> {config.get(key)!r}" for key in keys if held.get(key) != config.get(key)]


def _clear(folder):
    for name in os.listdir(folder):
        if name == LOCK:
            continue
        path = os.path.join(folder, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.remove(path)


@contextlib.contextmanager
def claim(folder, config, overwrite=False):
    """Holds `folder` for a run of `config` and yields whether that run is already complete.

    Raises `RunFolderError` with one line if another process uses the folder,
    or if it holds a run of another configuration and `overwrite` is false.
    With `overwrite`, the folder's previous contents are removed first.
    """
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as error:
        raise RunFolderError(f"Cannot create the run folder {folder}: {error.strerror}.") from None
    lock = _take_lock(folder)
    try:
        held = _held_config(folder)
        if held is not None and overwrite:
            _clear(folder)
            held = None
        if held is not None:
            changed = _differences(held, config)
            if changed:
                raise RunFolderError(
                    f"{folder} holds a run of another configuration ({'; '.join(changed[:3])}"
                    f"{'; ...' if len(changed) > 3 else ''}); pass --overwrite to replace it, or choose another --out."
                )
        with open(os.path.join(folder, CONFIG), "w") as f:
            json.dump(config, f, indent=2)
        yield held is not None and os.path.exists(os.path.join(folder, COMPLETE))
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(lock)


def _held_config(folder):
    path = os.path.join(folder, CONFIG)
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}  # unreadable: another configuration, as far as anyone can tell


def mark_complete(folder, summary):
    """Writes `DIR/complete.json`: every output of the run is in place."""
    temporary = os.path.join(folder, COMPLETE + ".tmp")
    with open(temporary, "w") as f:
        json.dump({"summary": summary}, f, indent=2)
    os.replace(temporary, os.path.join(folder, COMPLETE))
