"""Run directories: the one place both apps create, checkpoint, resume and log.

Layout (docs/run-directory.md has the file schemas)::

    RUN/leakylab.json          {"app": ..., "format": 1} — what made this directory
    RUN/config.yaml            the resolved config
    RUN/metrics.jsonl          one record per logged step
    RUN/probes.jsonl           one record per probed layer per window
    RUN/checkpoints/step_00000100/
        models/<name>.safetensors   weights (safetensors: loading runs no code)
        state.pt                    optimizer states, step, extra  (torch.load weights_only=True)
        rng_<rank>.pt               every RNG of process <rank>     (weights_only=True)
        meta.json                   written last: the checkpoint is complete

A checkpoint is assembled under ``checkpoints/.tmp-step_N`` and renamed into place, so one on
disk is either whole or absent; "latest" is the highest complete ``step_N``. We use accelerate
for launching, DDP and mixed precision but not for ``save_state``: its loader unpickles RNG and
custom state, which would let a shared checkpoint run code.

One writer per run directory: a training, or an evaluation opened with ``write=True``, holds
``RUN/writer.lock`` (common.runlock) while it runs. Under ``accelerate launch`` only the main
process takes it; the others write only between barriers after the main process has it, so one
launch is one holder.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import time
import weakref
from pathlib import Path
from typing import Any, Iterable, TypeVar

import torch
from safetensors import SafetensorError
from safetensors.torch import load_model, save_model

import yaml

from common.config import config_from_dict, dump_yaml, yaml_load
from common.errors import UserError
from common.faults import fault_point
from common.runlock import LOCK_NAME, acquire, is_lock_file
from common.rng_state import capture_rng_state, restore_rng_state

T = TypeVar("T")

FORMAT = 1
MARKER = "leakylab.json"
_CKPT_PREFIX = "step_"
# Keys that may differ on resume: where the run lives, how long it runs, whether a bar is drawn.
_MUTABLE_KEYS = {"out", "steps", "train.progress"}


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that a crash leaves the old file or the new one, never half."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict):
            out.update(_flatten(v, key))
        else:
            out[key] = v
    return out


def read_marker(path: Path) -> dict:
    """The marker of run directory ``path``; a UserError if it is missing or unreadable."""
    marker = path / MARKER
    if not marker.is_file():
        raise UserError(f"'{path}' is not a leakylab run directory (no {MARKER}); pass the out= of a training run")
    try:
        data = json.loads(marker.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UserError(f"'{marker}' is corrupt; this run directory cannot be used") from None
    if not isinstance(data, dict):
        raise UserError(f"'{marker}' is corrupt; this run directory cannot be used")
    return data


def _check_marker(path: Path, app: str) -> None:
    data = read_marker(path)
    if not isinstance(data.get("app"), str):
        raise UserError(f"'{path / MARKER}' is corrupt; this run directory cannot be used")
    if data.get("app") != app:
        raise UserError(
            f"'{path}' is a run directory of the {data.get('app')!r} app, not {app!r}; "
            f"use apps.{data.get('app')} for it or choose another out="
        )
    if data.get("format") != FORMAT:
        raise UserError(
            f"'{path}' has run-directory format {data.get('format')!r}; this leakylab reads format {FORMAT}"
        )


def _foreign(path: Path) -> bool:
    """``path`` holds files other than the lock's and a write test's."""
    return any(not is_lock_file(f.name) and not f.name.startswith(".write-test") for f in path.iterdir())


def _refuse_foreign(path: Path) -> None:
    """Refuse a folder that has files in it but no marker."""
    if _foreign(path):
        raise UserError(f"out='{path}' exists and is not a leakylab run directory; choose an empty or new out=")


def _launched_main() -> bool:
    """False only in a non-main process of ``accelerate launch`` / torchrun (they set RANK)."""
    return int(os.environ.get("WORLD_SIZE", "1")) <= 1 or os.environ.get("RANK", "0") == "0"


class RunDir:
    """A run directory opened by one process of a (possibly multi-process) run."""

    def __init__(self, path: Path, app: str, config: dict, accelerator: Any = None):
        self.path = Path(path)
        self.app = app
        self.config = config
        self.accelerator = accelerator
        self._release = None  # set while this object holds the run's lock

    # -- the writer lock -----------------------------------------------------------------------

    def _hold(self, what: str) -> None:
        lock = acquire(self.path, what)
        # dropped with this object too, so a caller that forgets close() does not pin the run
        self._release = weakref.finalize(self, lock.release)

    def close(self) -> None:
        """Release the run's lock if this object holds it (again: nothing)."""
        if self._release is not None:
            self._release()

    def __enter__(self) -> "RunDir":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- opening -------------------------------------------------------------------------------

    @property
    def is_main(self) -> bool:
        return self.accelerator is None or self.accelerator.is_main_process

    @property
    def rank(self) -> int:
        return 0 if self.accelerator is None else self.accelerator.process_index

    def _barrier(self) -> None:
        if self.accelerator is not None:
            self.accelerator.wait_for_everyone()

    @classmethod
    def create_or_resume(
        cls,
        path: str | Path,
        app: str,
        config: dict,
        accelerator: Any = None,
        allow_config_change: bool = False,
    ) -> "RunDir":
        """Create ``path`` as a run of ``app``, or re-open it to resume; see module docs.

        An existing run of the same app resumes only with the same config (``steps`` may
        change); a different config is refused unless ``allow_config_change``. The main process
        takes the run's lock (refused if another process holds it) and keeps it until
        :meth:`close`, the end of a ``common.runlock.released_on_exit`` block, or exit.
        """
        run = cls(Path(path), app, config, accelerator)
        p = run.path
        # Only the main process checks and creates: another one looking while it writes would see a
        # half-made directory. The others wait for it, then find a finished run directory.
        if run.is_main:
            if p.exists() and not p.is_dir():
                raise UserError(f"out='{p}' is a file, not a directory; choose another out=")
            # checks that read only come first: a refused directory gets not even a lock file
            if (p / MARKER).exists():
                _check_marker(p, app)
            elif p.is_dir() and _foreign(p) and not (p / LOCK_NAME).exists():
                _refuse_foreign(p)  # (a lock file: another process may be creating the run; judged below)
            try:
                p.mkdir(parents=True, exist_ok=True)
                probe = p / f".write-test{os.getpid()}"
                probe.write_text("")
                probe.unlink()
            except OSError as exc:
                raise UserError(f"cannot write the run directory '{p}' ({exc.strerror}); choose another out=") from None
            run._hold(f"{app} training")
            try:  # with the lock held: another process cannot be writing the marker or config now
                if (p / MARKER).exists():
                    _check_marker(p, app)
                    run._check_config(allow_config_change)
                    if allow_config_change or run._stored_config() != config:
                        atomic_write_text(p / "config.yaml", dump_yaml(config))
                else:
                    _refuse_foreign(p)
                    atomic_write_text(p / "config.yaml", dump_yaml(config))
                    atomic_write_text(p / MARKER, json.dumps({"app": app, "format": FORMAT}) + "\n")
            except BaseException:
                run.close()
                raise
        run._barrier()
        if not run.is_main:
            _check_marker(p, app)
        return run

    @classmethod
    def open(cls, path: str | Path, app: str, write: bool = False) -> "RunDir":
        """Open an existing run of ``app`` for reading (sample, translate) or, with ``write``, for an
        evaluation that writes into it: then the run's lock is held (by the main process of an
        ``accelerate launch``) until :meth:`close` or the end of a ``with`` block."""
        p = Path(path)
        if not p.is_dir():
            raise UserError(f"run directory '{p}' does not exist; pass the out= of a training run")
        _check_marker(p, app)
        run = cls(p, app, cls._read_config(p))
        if write and _launched_main():
            run._hold(f"{app} evaluation")
        return run

    def typed_config(self, schema: type[T]) -> T:
        """The resolved config stored here as the app's ``schema``, validated against today's
        version of it (a run from an older or newer app is refused with one line)."""
        try:
            return config_from_dict(schema, self.config)
        except UserError as exc:
            raise UserError(f"'{self.path}/config.yaml' does not fit this version of the app ({exc})") from None

    @staticmethod
    def _read_config(p: Path) -> dict:
        try:
            data = yaml_load((p / "config.yaml").read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UserError(f"'{p}' has no config.yaml; the run directory is damaged") from None
        except (yaml.YAMLError, UnicodeDecodeError):
            raise UserError(f"'{p / 'config.yaml'}' is corrupt; the run directory is damaged") from None
        if not isinstance(data, dict):
            raise UserError(f"'{p / 'config.yaml'}' is corrupt; the run directory is damaged")
        return data

    def _stored_config(self) -> dict:
        return self._read_config(self.path)

    def _check_config(self, allow_change: bool) -> None:
        old, new = _flatten(self._stored_config()), _flatten(self.config)
        changed = sorted(k for k in old.keys() | new.keys() if k not in _MUTABLE_KEYS and old.get(k) != new.get(k))
        if changed and not allow_change:
            shown = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in changed[:4])
            more = f" and {len(changed) - 4} more" if len(changed) > 4 else ""
            raise UserError(
                f"'{self.path}' was trained with another config ({shown}{more}); only steps= and train.progress= "
                "may change on resume — use a new out=, or pass --allow-config-change"
            )

    # -- logs ----------------------------------------------------------------------------------

    def _append(self, name: str, records: Iterable[dict]) -> None:
        if not self.is_main:
            return
        with open(self.path / name, "a", encoding="utf-8") as fh:
            for rec in records:
                fh.write(json.dumps(rec, allow_nan=True) + "\n")
            fh.flush()

    def log_metrics(self, record: dict) -> None:
        """Append one record (at least ``step``; ``time`` added if absent) to metrics.jsonl."""
        self._append("metrics.jsonl", [{"time": time.time(), **record}])

    def log_probes(self, records: list[dict]) -> None:
        """Append probe records (keys: docs/run-directory.md) to probes.jsonl."""
        self._append("probes.jsonl", records)

    def read_jsonl(self, name: str) -> list[dict]:
        """Records of a JSONL log; a torn last line (killed mid-write) is ignored."""
        path = self.path / name
        if not path.exists():
            return []
        out = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return out

    def _truncate_logs(self, step: int) -> None:
        """Drop records written after ``step`` (they will be logged again after resuming)."""
        if not self.is_main:
            return
        for name in ("metrics.jsonl", "probes.jsonl"):
            if (self.path / name).exists():
                # probes.jsonl steps are 0-based step indices; metrics.jsonl counts completed steps
                kept = [r for r in self.read_jsonl(name)
                        if (r.get("step", 0) < step if name == "probes.jsonl" else r.get("step", 0) <= step)]
                atomic_write_text(self.path / name, "".join(json.dumps(r) + "\n" for r in kept))

    # -- checkpoints ---------------------------------------------------------------------------

    @property
    def checkpoint_root(self) -> Path:
        return self.path / "checkpoints"

    def checkpoints(self) -> list[Path]:
        """Complete checkpoints, oldest first."""
        root = self.checkpoint_root
        if not root.is_dir():
            return []
        found = [
            d for d in root.iterdir()
            if d.is_dir() and d.name.startswith(_CKPT_PREFIX) and d.name[len(_CKPT_PREFIX):].isdigit()
            and (d / "meta.json").is_file()
        ]
        return sorted(found, key=lambda d: int(d.name[len(_CKPT_PREFIX):]))

    def latest_checkpoint(self) -> Path | None:
        ckpts = self.checkpoints()
        return ckpts[-1] if ckpts else None

    def _unwrap(self, module: torch.nn.Module) -> torch.nn.Module:
        if self.accelerator is not None:
            return self.accelerator.unwrap_model(module)
        return getattr(module, "module", module) if isinstance(module, torch.nn.parallel.DistributedDataParallel) else module

    def save_checkpoint(
        self,
        step: int,
        models: dict[str, torch.nn.Module],
        optimizers: dict[str, torch.optim.Optimizer],
        extra: dict | None = None,
        keep: int = 2,
    ) -> Path:
        """Write checkpoint ``step`` atomically (all processes must call); keep the last ``keep``."""
        root = self.checkpoint_root
        final = root / f"{_CKPT_PREFIX}{step:08d}"
        tmp = root / f".tmp-{final.name}"
        if self.is_main:
            if tmp.exists():
                shutil.rmtree(tmp)
            (tmp / "models").mkdir(parents=True)
        self._barrier()
        torch.save(capture_rng_state(), tmp / f"rng_{self.rank}.pt")
        if self.is_main:
            for name, model in models.items():
                save_model(self._unwrap(model), str(tmp / "models" / f"{name}.safetensors"))
            fault_point("mid_checkpoint", step)
            state = {
                "step": int(step),
                "optimizers": {k: opt.state_dict() for k, opt in optimizers.items()},
                "extra": extra or {},
            }
            torch.save(state, tmp / "state.pt")
        self._barrier()
        if self.is_main:
            meta = {"app": self.app, "format": FORMAT, "step": int(step), "time": time.time(),
                    "models": sorted(models), "world_size": 1 if self.accelerator is None else self.accelerator.num_processes}
            (tmp / "meta.json").write_text(json.dumps(meta) + "\n", encoding="utf-8")
            for f in tmp.rglob("*"):
                if f.is_file():
                    with open(f, "rb") as fh:
                        os.fsync(fh.fileno())
            if final.exists():
                old = root / f".old-{final.name}"
                shutil.rmtree(old, ignore_errors=True)
                os.replace(final, old)
                os.replace(tmp, final)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, final)
            _fsync_dir(root)
            for stale in self.checkpoints()[:-keep] if keep > 0 else []:
                shutil.rmtree(stale, ignore_errors=True)
        self._barrier()
        return final

    def _torch_load(self, path: Path) -> Any:
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:
            raise UserError(
                f"refusing to load '{path}': it holds pickled objects other than tensors (possibly code); "
                "checkpoints from untrusted sources are never unpickled"
            ) from None
        except (RuntimeError, EOFError, OSError, ValueError) as exc:
            raise UserError(f"checkpoint file '{path}' is corrupt or truncated ({type(exc).__name__}); "
                            "delete that checkpoint directory to resume from the previous one") from None

    def load_weights(self, name: str, module: torch.nn.Module, step: int | None = None) -> int:
        """Load model ``name`` of the latest (or given) checkpoint into ``module``; returns its step."""
        ckpt = self._find(step)
        self._load_model_file(ckpt, name, module)
        return int(ckpt.name[len(_CKPT_PREFIX):])

    def _find(self, step: int | None) -> Path:
        ckpts = self.checkpoints()
        if not ckpts:
            raise UserError(f"'{self.path}' has no checkpoint yet; train it first")
        if step is None:
            return ckpts[-1]
        for c in ckpts:
            if int(c.name[len(_CKPT_PREFIX):]) == step:
                return c
        raise UserError(f"'{self.path}' has no checkpoint at step {step} (have: "
                        + ", ".join(c.name[len(_CKPT_PREFIX):].lstrip('0') or '0' for c in ckpts) + ")")

    def _load_model_file(self, ckpt: Path, name: str, module: torch.nn.Module) -> None:
        f = ckpt / "models" / f"{name}.safetensors"
        if not f.is_file():
            raise UserError(f"checkpoint '{ckpt}' has no weights for model '{name}'; it is damaged or from another app")
        try:
            missing, unexpected = load_model(self._unwrap(module), str(f), strict=False)
        except (SafetensorError, OSError) as exc:
            raise UserError(f"checkpoint file '{f}' is corrupt or truncated ({exc}); delete that checkpoint "
                            "directory to resume from the previous one") from None
        except RuntimeError as exc:
            raise UserError(f"checkpoint '{f}' does not fit this model ({str(exc).splitlines()[0]}); "
                            "was it trained with another config?") from None
        if missing or unexpected:
            raise UserError(f"checkpoint '{f}' does not fit this model (missing {sorted(missing)[:3]}, "
                            f"unexpected {sorted(unexpected)[:3]}); was it trained with another config?")

    def load_checkpoint(
        self,
        models: dict[str, torch.nn.Module],
        optimizers: dict[str, torch.optim.Optimizer],
    ) -> dict | None:
        """Resume from the latest checkpoint: weights, optimizers, RNG; logs cut back to its step.

        Returns None for a fresh run, else ``{"step": int, "extra": dict}``.
        """
        ckpt = self.latest_checkpoint()
        if ckpt is None:
            self._truncate_logs(0)  # records of a run killed before its first checkpoint
            self._barrier()
            return None
        try:
            meta_app = json.loads((ckpt / "meta.json").read_text(encoding="utf-8")).get("app")
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as exc:
            raise UserError(f"checkpoint file '{ckpt / 'meta.json'}' is corrupt or truncated ({type(exc).__name__}); "
                            "delete that checkpoint directory to resume from the previous one") from None
        if meta_app != self.app:
            raise UserError(f"checkpoint '{ckpt}' was written by the {meta_app!r} app, not {self.app!r}")
        for name, model in models.items():
            self._load_model_file(ckpt, name, model)
        state = self._torch_load(ckpt / "state.pt")
        for name, opt in optimizers.items():
            if name not in state.get("optimizers", {}):
                raise UserError(f"checkpoint '{ckpt}' has no state for optimizer '{name}'; it is damaged")
            opt.load_state_dict(state["optimizers"][name])
        rng_file = ckpt / f"rng_{self.rank}.pt"
        if rng_file.is_file():
            restore_rng_state(self._torch_load(rng_file))
        step = int(state["step"])
        self._truncate_logs(step)
        self._barrier()
        return {"step": step, "extra": state.get("extra", {})}
