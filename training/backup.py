"""Backups of a run, for an exact resume after a kill at any moment.

At the end of every `every` epochs, and of the last, `RunBackup` writes every
variable of the model and of its optimizer to `BACKUP/epoch-<n>.npz` (numpy,
nothing pickled), the seed generators' states included, which Keras'
`save_weights` leaves out; then `BACKUP/state.json`, atomically and last: it
names the two newest backups with the epoch each ends, its sha256 and the best
validation loss so far. A kill while a backup is being written leaves the
state file naming the older ones.

`restore` loads the newest backup whose checksum holds and returns the epoch
to start from; a damaged one is reported in one line and the one before it
used, or training restarts from the first epoch, as the message says. With the
data stream of `keras_ae.data.make_dataset(..., epochs=...)`, whose batches are
a function of (seed, epoch), a seeded run resumed so is bit-identical to an
uninterrupted one.
"""

import hashlib
import json
import os
import shutil

import keras
import numpy as np

STATE = "state.json"
KEEP = 2  # backups kept: the newest, and the one before it in case the newest is damaged


def _sha256(path):
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _write_atomically(path, text):
    """Writes a file that is either complete or absent, even across a kill."""
    temporary = f"{path}.tmp"
    with open(temporary, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)


def _state_variables(model):
    """Every variable a step reads or changes: the model's (weights, seed
    generator states) and the optimizer's (step count, moments, loss scale)."""
    return [*model.variables, *model.optimizer.variables]


def _load(model, path):
    """Assigns the values of a backup to `_state_variables(model)`; False if they do not fit this model."""
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)  # its variables must exist to be loaded
    variables = _state_variables(model)
    with np.load(path, allow_pickle=False) as archive:
        values = [archive[f"arr_{i}"] for i in range(len(archive.files))]
    if len(values) != len(variables) or any(v.shape != value.shape for v, value in zip(variables, values, strict=True)):
        return False
    for variable, value in zip(variables, values, strict=True):
        variable.assign(value)
    return True


def read_state(directory):
    """The backups listed in `directory`'s state file, newest first; [] if none.

    Raises ValueError with one line when the state file is damaged.
    """
    path = os.path.join(directory, STATE)
    if not os.path.exists(path):
        return []
    try:
        with open(path) as f:
            backups = json.load(f)["backups"]
        return [
            {
                "epoch": int(b["epoch"]),
                "file": str(b["file"]),
                "sha256": str(b["sha256"]),
                "best_val_loss": b.get("best_val_loss"),
            }
            for b in backups
        ]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{path} is damaged ({type(error).__name__})") from None


def restore(model, directory):
    """Loads the newest intact backup of `directory` into a compiled `model`.

    Returns:
        (epoch, best_val_loss): the epoch to start from (0: nothing restored)
        and the best validation loss the run had reached, or None.
    """
    try:
        backups = read_state(directory)
    except ValueError as error:
        print(f"The backup is unusable: {error}; training restarts from the first epoch.")
        shutil.rmtree(directory, ignore_errors=True)
        return 0, None
    for i, backup in enumerate(backups):
        path = os.path.join(directory, backup["file"])
        if not os.path.exists(path) or _sha256(path) != backup["sha256"]:
            problem = "is damaged (its checksum differs)"
        elif not _load(model, path):
            problem = "does not fit this model"
        else:
            return backup["epoch"], backup["best_val_loss"]
        fallback = (
            f"resuming from the one before it (epoch {backups[i + 1]['epoch']})"
            if i + 1 < len(backups)
            else "training restarts from the first epoch"
        )
        print(f"The backup {path} {problem}; {fallback}.")
    if backups:
        shutil.rmtree(directory, ignore_errors=True)
    return 0, None


class RunBackup(keras.callbacks.Callback):
    """Backs the run up at the end of every `every` epochs and of the last one (see the module).

    Args:
        directory: the backup folder.
        every: epochs between backups.
        best_val_loss: the best validation loss of the epochs before a resume,
            kept in the state so that a resumed run selects `best.keras` as an
            uninterrupted one would.
    """

    def __init__(self, directory, every=1, best_val_loss=None):
        super().__init__()
        self.directory = directory
        self.every = every
        self.best_val_loss = best_val_loss

    def on_epoch_end(self, epoch, logs=None):
        val_loss = (logs or {}).get("val_loss")
        if val_loss is not None and (self.best_val_loss is None or val_loss < self.best_val_loss):
            self.best_val_loss = float(val_loss)
        done = epoch + 1
        if done % self.every == 0 or done == self.params.get("epochs"):
            self.save(done)

    def save(self, epochs_done):
        os.makedirs(self.directory, exist_ok=True)
        name = f"epoch-{epochs_done}.npz"
        path = os.path.join(self.directory, name)
        with open(path, "wb") as f:
            np.savez(f, *[keras.ops.convert_to_numpy(v) for v in _state_variables(self.model)])
        try:
            kept = read_state(self.directory)
        except ValueError:
            kept = []
        backup = {"epoch": epochs_done, "file": name, "sha256": _sha256(path), "best_val_loss": self.best_val_loss}
        backups = [backup] + [b for b in kept if b["file"] != name][: KEEP - 1]
        _write_atomically(os.path.join(self.directory, STATE), json.dumps({"backups": backups}, indent=2) + "\n")
        listed = {b["file"] for b in backups}
        for stale in os.listdir(self.directory):
            if stale.endswith(".npz") and stale not in listed:
                os.remove(os.path.join(self.directory, stale))
