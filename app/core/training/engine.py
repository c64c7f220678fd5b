"""The training loop: plain events to listeners, stop/pause flags, validation on whole images,
checkpoints, a run folder, and guards against NaN losses and running out of memory."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from filelock import Timeout

from ..config import ExperimentConfig
from ..dataset import Dataset
from ..experiment_data import load_experiment_data
from ..losses import build_loss
from ..metrics import ScoreAccumulator
from ..models import build_model, count_parameters
from ..optim import build_optimizer, build_scheduler, load_scheduler_state
from ..pairing import DatasetError
from .control import TrainingControl
from .checkpoint import CheckpointError, check_same_settings, load_checkpoint, load_model_state, save_checkpoint
from .data import Normaliser, PatchDataset, ValidationWeights
from .data_checks import check_training_data
from .device import configure_cpu_threads, resolve_device
from .distributed import DistributedContext, recount_steps
from .precision import autocast_dtype, describe, prefers_channels_last
from .events import (BatchFinished, CheckpointSaved, EpochFinished, Failed, Finished, LandscapeSaved,
                     TrainingWarning)
from .landscape_snapshots import LandscapeRecorder
from .run_folder import RunFolder, new_run_dir, training_lock
from .weight_average import WeightAverage

Listener = Callable[[object], None]


class TrainingError(Exception):
    """Training cannot go on; ``kind`` is "nan", "out of memory", "data" or "error"."""

    def __init__(self, message: str, kind: str = "error"):
        super().__init__(message)
        self.kind = kind


class Trainer:
    """Train one experiment into a run folder. ``run()`` blocks; call it from a worker thread
    and steer it with :attr:`control`."""

    def __init__(self, config: ExperimentConfig, run_dir: str | Path | None = None, *,
                 dataset: Dataset | None = None, listeners: list[Listener] | None = None,
                 control: TrainingControl | None = None, resume: bool = False):
        self.config = config.validate()
        self.listeners = list(listeners or [])
        self.control = control or TrainingControl()
        self.resume_requested = resume
        self.ctx = DistributedContext.from_env()
        if run_dir is None and self.ctx.is_main:
            run_dir = new_run_dir(config.name)
        self.folder = RunFolder(Path(run_dir or "."), writable=self.ctx.is_main)
        self.dataset = dataset
        self.history: list[dict] = []

    # -- events ----------------------------------------------------------------------------
    def emit(self, event) -> None:
        if not self.ctx.is_main:
            return
        for listener in self.listeners:
            listener(event)

    # -- set-up ----------------------------------------------------------------------------
    def _prepare(self) -> None:
        cfg = self.config
        torch.manual_seed(cfg.training.seed)
        self.device = self.ctx.start(resolve_device(cfg.training.device))
        if self.device.type == "cpu":
            configure_cpu_threads()
        self.autocast = autocast_dtype(self.device, cfg.training.mixed_precision)
        self.channels_last = prefers_channels_last(self.device)
        if self.dataset is None:
            self.dataset = load_experiment_data(cfg)
        train = self.dataset.split("train")
        self.val = self.dataset.split("val")
        self.val_weights = ValidationWeights(cfg)  # the validation loss weighs pixels as training does
        self._report_problems()
        problem, warnings = check_training_data(self.dataset, train, self.val, cfg.data.patch_size)
        for warning in warnings:
            self.emit(TrainingWarning(warning))
        if problem:
            raise TrainingError(problem, "data")
        self.image_dtype, self.in_channels = str(train[0].image.dtype), train[0].channels
        self.num_classes = self.dataset.num_classes
        stats = self.dataset.stats
        self.normaliser = Normaliser.for_dataset(cfg.data.normalisation, stats, train[0].image.dtype)
        patches = cfg.training.steps_per_epoch * cfg.training.batch_size or None
        self.patches = PatchDataset(train, cfg, self.normaliser, patches)
        self.model = build_model(cfg.model.name, self.in_channels, self.num_classes, **cfg.model.params)
        try:
            out_size = self.model.output_size((cfg.data.patch_size, cfg.data.patch_size))
        except ValueError as exc:
            raise TrainingError(f"patch size {cfg.data.patch_size}: {exc}", "settings") from None
        self.crop = (cfg.data.patch_size - out_size[0]) // 2  # valid convolutions: labels cropped to the logits
        self.model.to(self.device)
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.net = self.ctx.wrap(self.model, self.device)
        self.ema = WeightAverage(self.model, cfg.training.ema_decay) if cfg.training.ema_decay > 0 else None
        self.loss_fn = build_loss(cfg.loss.name, **cfg.loss.params)
        self.rank_patches = len(self.patches) // self.ctx.world
        self.steps_per_epoch = math.ceil(self.rank_patches / cfg.training.batch_size)
        self.optimizer = build_optimizer(cfg.optimizer.name, self.model.parameters(), cfg.optimizer.lr,
                                         **cfg.optimizer.params)
        self.scheduler = build_scheduler(cfg.optimizer.schedule, self.optimizer,
                                         self.steps_per_epoch * cfg.training.epochs,
                                         cfg.optimizer.warmup_steps, **cfg.optimizer.schedule_params)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.autocast == torch.float16)
        self.epoch, self.step_in_epoch, self.global_step = 0, 0, 0
        self.elapsed = 0.0
        self.best_value: float | None = None
        self.best_epoch = 0
        self.data_seconds = self.compute_seconds = 0.0
        self._partial = {"loss_sum": 0.0, "steps": 0, "correct": 0.0, "counted": 0.0}
        self.landscapes = (LandscapeRecorder(cfg, self.dataset, self.normaliser, self.num_classes, self.device)
                           if cfg.training.landscape_every and self.ctx.is_main else None)
        if self.resume_requested:
            self._restore()
        if self.ctx.is_main:  # resumed: the epochs and time limit it continues with
            cfg.save(self.folder.config_path)
        self.folder.log(f"model {cfg.model.name} ({count_parameters(self.model):,} parameters), "
                        f"{len(train)} training / {len(self.val)} validation images, device {self.device}, "
                        f"{describe(self.autocast)} arithmetic")

    def _state(self, epoch: int, step_in_epoch: int) -> dict:
        return {
            "model_name": self.config.model.name,
            "model_state": self.predicting_model.state_dict(),
            "train_model_state": self.model.state_dict(),
            "ema_averaged": self.ema.updates if self.ema is not None else 0,
            "optimizer_state": self.optimizer.state_dict(),
            "scheduler_state": self.scheduler.state_dict(),
            "scaler_state": self.scaler.state_dict(),
            "epoch": epoch, "step_in_epoch": step_in_epoch, "global_step": self.global_step,
            "elapsed": self.elapsed, "best_value": self.best_value, "best_epoch": self.best_epoch,
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else [],
            "partial": dict(self._partial),
            "image_dtype": self.image_dtype,
            "config": self.config.to_dict(),
            "in_channels": self.in_channels, "num_classes": self.num_classes, "world": self.ctx.world,
            "normaliser": self.normaliser.to_dict(),
        }

    def _report_problems(self) -> None:
        """What the loader found wrong (files left out, how masks were read) goes to the log and
        into one warning, so no file is skipped silently."""
        problems = self.dataset.problems
        for problem in problems:
            self.folder.log(f"dataset: {problem.path}: {problem.reason}")
        if problems:
            shown = "; ".join(f"{Path(p.path).name}: {p.reason}" for p in problems[:3])
            more = f" (and {len(problems) - 3} more, listed in train.log)" if len(problems) > 3 else ""
            self.emit(TrainingWarning(f"{len(problems)} dataset problem(s): {shown}{more}"))

    def _restore(self) -> None:
        last = self.folder.last
        state = load_checkpoint(last, map_location=self.device)
        saved = check_same_settings(last, state, self.config)["optimizer"]
        try:
            self._restore_state(state)  # a CheckpointError (model mismatch) passes through as it is
        except (KeyError, TypeError, ValueError, IndexError, AttributeError, RuntimeError) as exc:
            raise CheckpointError(f"{last}: cannot resume from it, its training state is incomplete or damaged "
                                  f"({type(exc).__name__}: {exc})") from None
        self.history = [r for r in self.folder.read_history() if r["epoch"] <= self.epoch]
        self.folder.log(f"resumed at epoch {self.epoch + 1}, step {self.step_in_epoch}")
        if saved.get("lr") != self.config.optimizer.lr:
            self.folder.log(f"learning rate {saved.get('lr')} -> {self.config.optimizer.lr} from here on")

    def _restore_state(self, state: dict) -> None:
        load_model_state(self.model, {**state, "model_state": state.get("train_model_state", state["model_state"])},
                         self.folder.last)
        if self.ema is not None:
            load_model_state(self.ema.module, state, self.folder.last)
            self.ema.updates = int(state.get("ema_averaged", 0))
        self.optimizer.load_state_dict(state["optimizer_state"])
        load_scheduler_state(self.scheduler, state["scheduler_state"])
        self.scaler.load_state_dict(state["scaler_state"])
        self.epoch, self.step_in_epoch = state["epoch"], state["step_in_epoch"]
        self.global_step, self.elapsed = state["global_step"], state["elapsed"]
        self.best_value, self.best_epoch = state["best_value"], state["best_epoch"]
        torch.set_rng_state(state["torch_rng"].cpu())
        if self.device.type == "cuda" and state.get("cuda_rng"):
            torch.cuda.set_rng_state_all([t.cpu() for t in state["cuda_rng"]])
        self._partial = dict(state.get("partial") or self._partial)
        saved_world = int(state.get("world", self.ctx.world))
        if saved_world != self.ctx.world:
            self.step_in_epoch, self.global_step = recount_steps(
                self.epoch, self.step_in_epoch, saved_world, self.ctx.world, self.config.training.batch_size,
                self.steps_per_epoch)
            self.scheduler.last_epoch = self.global_step
            for group, base in zip(self.optimizer.param_groups, self.scheduler.base_lrs):
                group["lr"] = base * self.scheduler.lr_lambdas[0](self.global_step)
            message = (f"this run trained on {saved_world} processes and goes on with {self.ctx.world}: an epoch "
                       f"is now {self.steps_per_epoch} steps, and its place in the epoch and the schedule are "
                       "counted in them")
            self.folder.log(message)
            self.emit(TrainingWarning(message))

    def _save(self, kind: str, epoch: int, step_in_epoch: int) -> None:
        if not self.ctx.is_main:
            return
        path = self.folder.last if kind == "last" else self.folder.best
        save_checkpoint(path, self._state(epoch, step_in_epoch))
        self.emit(CheckpointSaved(str(path), kind, epoch))

    # -- the loop --------------------------------------------------------------------------
    def run(self) -> dict:
        """Train; returns the summary. Failures are reported as a :class:`Failed` event and
        re-raised as :class:`TrainingError`."""
        lock = training_lock(self.folder.path) if self.ctx.is_main else None
        if lock is not None:
            try:
                lock.acquire(timeout=2)
            except Timeout:
                message = f"{self.folder.path}: another process is training into this run folder"
                self.emit(Failed(message, "data"))
                raise TrainingError(message, "data") from None
        try:
            return self._run()
        finally:
            if lock is not None:
                lock.release()

    def _run(self) -> dict:
        try:
            self._prepare()
            reason = self._loop()
        except TrainingError as exc:
            self.ctx.finish(clean=False)
            self._record_failure(str(exc))
            self.emit(Failed(str(exc), exc.kind))
            raise
        except (torch.OutOfMemoryError, MemoryError):
            self._out_of_memory()
        except Exception as exc:
            if isinstance(exc, RuntimeError) and "can't allocate memory" in str(exc):  # the CPU allocator's words
                self._out_of_memory()
            kind = "data" if isinstance(exc, DatasetError) else "error"
            gone = not self.folder.path.is_dir()  # removed or moved while training: said as that, not as a file
            message = (f"the run folder {self.folder.path} was removed or moved while training; the run stopped"
                       if gone else str(exc) if kind == "data" else f"{type(exc).__name__}: {exc}")
            self._record_failure(message)
            self.emit(Failed(message, kind))
            self.ctx.finish(clean=False)
            raise
        self.ctx.finish()
        summary = self._summary(reason)
        self.folder.write_summary(summary)
        self.folder.log(f"finished ({reason})")
        self.emit(Finished(reason, summary))
        return summary

    def _record_failure(self, message: str) -> None:
        """Log a failure, with config.json if the run had not written it yet; not if its folder has gone."""
        if not self.ctx.is_main or not self.folder.writable or not self.folder.path.is_dir():
            return
        if not self.folder.config_path.exists():
            try:
                self.config.save(self.folder.config_path)
            except OSError:
                pass
        self.folder.log(f"failed: {message}")

    def _out_of_memory(self) -> None:
        """Report running out of memory (GPU or CPU) with what to change; raises TrainingError."""
        message = (f"out of memory on {getattr(self, 'device', 'the device')}: use a smaller batch size "
                   f"(now {self.config.training.batch_size}) or patch size (now {self.config.data.patch_size}); "
                   "the last checkpoint is kept")
        self._record_failure(message)
        self.emit(Failed(message, "out of memory"))
        self.ctx.finish(clean=False)
        raise TrainingError(message, "out of memory") from None

    def _loop(self) -> str:
        cfg = self.config.training
        self._started = time.perf_counter() - self.elapsed
        if cfg.time_limit and self.elapsed >= cfg.time_limit:
            return "time limit"  # resuming a run that used its time budget: nothing to do
        while self.epoch < cfg.epochs:
            epoch = self.epoch
            self.patches.set_epoch(epoch)
            first = self.step_in_epoch
            mine = range(self.ctx.rank, self.rank_patches * self.ctx.world, self.ctx.world)
            loader = torch.utils.data.DataLoader(torch.utils.data.Subset(self.patches, mine[first * cfg.batch_size:]),
                                                 batch_size=cfg.batch_size, shuffle=False, num_workers=0)
            epoch_start = time.perf_counter()
            self.model.train()
            fetch_start = time.perf_counter()
            over = stopped = False
            for offset, (images, masks, weights) in enumerate(loader):
                self.data_seconds += time.perf_counter() - fetch_start
                step = first + offset + 1
                compute_start = time.perf_counter()
                loss, batch_correct, batch_counted = self._train_step(images, masks, weights, epoch, step)
                self.compute_seconds += time.perf_counter() - compute_start
                self._partial["loss_sum"] += loss
                self._partial["steps"] += 1
                self._partial["correct"] += batch_correct
                self._partial["counted"] += batch_counted
                self.global_step += 1
                self.emit(BatchFinished(epoch + 1, step, self.steps_per_epoch, self.global_step, loss,
                                        images.shape[0] / max(1e-9, time.perf_counter() - compute_start),
                                        self.optimizer.param_groups[0]["lr"]))
                if self.control.paused:  # paused time counts neither towards the limit nor the epoch's seconds
                    paused_at = time.perf_counter()
                    self.control.wait_while_paused()
                    self._started += time.perf_counter() - paused_at
                    epoch_start += time.perf_counter() - paused_at
                stop = self._sync_clock(self.control.stop_requested)
                over = bool(cfg.time_limit and self.elapsed >= cfg.time_limit)
                if stop and step < self.steps_per_epoch:
                    self.step_in_epoch = step
                    self._save("last", epoch, step)
                    return "stopped"
                if stop or over:
                    stopped = stop
                    break
                fetch_start = time.perf_counter()
            self._finish_epoch(epoch, epoch_start)
            if cfg.time_limit and self.elapsed >= cfg.time_limit:
                return "time limit"
            if stopped:
                return "stopped" if self.epoch < cfg.epochs else "completed"
        return "completed"

    def _sync_clock(self, stop: bool) -> bool:
        """Update the shared elapsed time (the slowest rank's) and agree on stopping."""
        elapsed = time.perf_counter() - self._started
        stop, self.elapsed = self.ctx.max_pair(float(stop), elapsed, self.device)
        return stop > 0

    def _apply_time_schedule(self) -> None:
        """With a time budget, the schedule runs over whichever ends first: steps or time."""
        limit = self.config.training.time_limit
        if not limit:
            return
        factor = self.scheduler.lr_lambdas[0]
        steps = self.global_step + 1  # the step about to be taken; elapsed is the last shared clock
        progress = max((steps - factor.warmup) / max(1, factor.total - factor.warmup), self.elapsed / limit)
        for group, base in zip(self.optimizer.param_groups, self.scheduler.base_lrs):
            group["lr"] = base * factor.at(steps, progress)

    def _train_step(self, images, masks, weights, epoch: int, step: int) -> tuple[float, float, float]:
        non_blocking = self.device.type == "cuda"
        images = images.to(self.device, non_blocking=non_blocking)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        if self.crop:
            c = self.crop
            masks, weights = masks[:, c:-c, c:-c], weights[:, c:-c, c:-c]
        masks = masks.to(self.device, non_blocking=non_blocking)
        weights = weights.to(self.device, non_blocking=non_blocking)
        self.optimizer.zero_grad(set_to_none=True)
        with torch.autocast(self.device.type, dtype=self.autocast, enabled=self.autocast is not None):
            outputs = self.net(images)
        heads = outputs if isinstance(outputs, list) else [outputs]
        loss = sum(self.loss_fn(head, masks, weights) for head in heads) / len(heads)
        if self.ctx.any(not bool(torch.isfinite(loss)), self.device):
            lr = self.optimizer.param_groups[0]["lr"]
            kept = f"the last good checkpoint ({self.folder.last.name}) is kept" if self.folder.last.exists() \
                else "no checkpoint had been written yet"
            raise TrainingError(f"the loss became {loss.item()} at epoch {epoch + 1}, step {step}: training "
                                f"diverged. Try a lower learning rate (now {lr:.3g}) or another loss; {kept}", "nan")
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self._apply_time_schedule()
        if self.ema is not None:
            self.ema.update(self.model)
        with torch.no_grad():
            predicted = heads[-1].argmax(1) if heads[-1].shape[1] > 1 else (heads[-1][:, 0] > 0).long()
            valid = weights > 0
            correct = float(((predicted == masks) & valid).sum())
            counted = float(valid.sum())
        return self.ctx.mean(float(loss.detach()), self.device), correct, counted

    def _finish_epoch(self, epoch: int, epoch_start: float) -> None:
        cfg = self.config.training
        scores = None
        if self.val and self.ctx.is_main and ((epoch + 1) % cfg.val_interval == 0 or epoch + 1 == cfg.epochs
                                               or (cfg.time_limit and self.elapsed >= cfg.time_limit)
                                               or self.control.stop_requested):
            scores = self.validate()
        self.ctx.barrier()
        self._sync_clock(False)
        seconds = time.perf_counter() - epoch_start
        p = self._partial
        row = EpochFinished(epoch + 1, p["loss_sum"] / p["steps"] if p["steps"] else float("nan"),
                            p["correct"] / p["counted"] if p["counted"] else float("nan"),
                            *(scores[:4] if scores else (None, None, None, None)),
                            self.optimizer.param_groups[0]["lr"], seconds,
                            val_adapted_rand_error=scores[4] if scores else None)
        self._partial = {"loss_sum": 0.0, "steps": 0, "correct": 0.0, "counted": 0.0}
        self.history.append(row.row())
        self.folder.write_history(self.history)
        self.epoch, self.step_in_epoch = epoch + 1, 0
        value = self._metric_value(row)
        improved = value is not None and (self.best_value is None or
                                          (value < self.best_value if cfg.best_metric == "val_loss" or not self.val
                                           else value > self.best_value))
        if improved:
            self.best_value, self.best_epoch = value, epoch + 1
        self._save("last", epoch + 1, 0)
        if improved:
            self._save("best", epoch + 1, 0)
        self.folder.log(f"epoch {epoch + 1}: train loss {row.train_loss:.4f}" +
                     (f", val accuracy {row.val_pixel_accuracy:.4f}, IoU {row.val_iou:.4f}" if scores else ""))
        self.emit(row)
        self._landscape_snapshot(epoch + 1)

    def _landscape_snapshot(self, epoch: int) -> None:
        """Store a loss-surface slice when one is due; its time is not training time, and a
        failure warns once and turns the slices off instead of ending the run."""
        recorder = self.landscapes
        last = epoch == self.config.training.epochs or self.control.stop_requested or bool(
            self.config.training.time_limit and self.elapsed >= self.config.training.time_limit)
        if recorder is None or not recorder.due(epoch, last):
            return
        try:
            path, seconds = recorder.take(self.predicting_model, self.folder.path, epoch)
        except (ValueError, RuntimeError, OSError) as exc:
            if isinstance(exc, torch.OutOfMemoryError):
                raise
            self.landscapes = None
            message = f"loss-surface slices turned off: {exc}"
            self.folder.log(message)
            self.emit(TrainingWarning(message))
            return
        self._started += seconds  # like a pause: the slice does not use the time budget
        self.folder.log(f"epoch {epoch}: loss-surface slice saved ({seconds:.1f} s)")
        self.emit(LandscapeSaved(str(path), epoch, seconds))

    @property
    def predicting_model(self) -> torch.nn.Module:
        """The weights that validate and go into checkpoints for prediction (the average, if any)."""
        return self.ema.module if self.ema is not None else self.model

    def _metric_value(self, row: EpochFinished) -> float | None:
        if not self.val:
            return row.train_loss
        return getattr(row, self.config.training.best_metric)

    def validate(self) -> tuple[float, float, float, float, float]:
        """Loss, pixel accuracy, IoU, Dice and the mean adapted Rand error (of the predicted
        foreground's connected components, before clean-up) on the whole validation images (tiled)."""
        from ..inference import predict_probabilities, tile_settings_for
        from ..metrics import foreground_rand_error, mean_defined

        settings = tile_settings_for(self.config)
        scores = ScoreAccumulator(max(2, self.num_classes))
        losses, rand_errors = [], []
        for index, sample in enumerate(self.val):
            probs = predict_probabilities(self.predicting_model, self.normaliser(sample.image), settings,
                                          device=self.device, autocast=self.autocast)
            logits = torch.from_numpy(np.log(np.clip(probs, 1e-7, 1.0)))[None]
            if self.num_classes == 1:
                logits = logits[:, 1:] - logits[:, :1]
            target = torch.from_numpy(sample.mask.astype(np.int64))[None]
            losses.append(float(self.loss_fn(logits, target, self.val_weights(index, sample.mask))))
            labels = probs.argmax(0)
            scores.add(labels, sample.mask)
            rand_errors.append(foreground_rand_error(labels, sample.mask))
        micro = scores.micro()
        return float(np.mean(losses)), micro.pixel_accuracy, micro.iou, micro.dice, mean_defined(rand_errors)

    def _summary(self, reason: str) -> dict:
        def extreme(key, pick):
            rows = [r for r in self.history if r.get(key) not in (None, "")]
            if not rows:
                return None, None
            row = pick(rows, key=lambda r: r[key])
            return row[key], row["epoch"]

        low_loss, low_epoch = extreme("val_loss" if self.val else "train_loss", min)
        high_acc, high_epoch = extreme("val_pixel_accuracy" if self.val else "train_pixel_accuracy", max)
        best_iou, _ = extreme("val_iou", max)
        best_dice, _ = extreme("val_dice", max)
        total = self.data_seconds + self.compute_seconds
        return {
            "name": self.config.name, "reason": reason, "epochs": self.epoch,
            "lowest_loss": low_loss, "lowest_loss_epoch": low_epoch,
            "highest_accuracy": high_acc, "highest_accuracy_epoch": high_epoch,
            "best_iou": best_iou, "best_dice": best_dice,
            "best_metric": self.config.training.best_metric, "best_value": self.best_value,
            "best_epoch": self.best_epoch, "wall_seconds": round(self.elapsed, 2), "device": str(self.device),
            "model": self.config.model.name, "parameters": count_parameters(self.model),
            "loss": self.config.loss.name, "optimizer": self.config.optimizer.name, "lr": self.config.optimizer.lr,
            "data_fraction_of_step_time": round(self.data_seconds / total, 4) if total else None,
        }
