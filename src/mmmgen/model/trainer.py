"""The ``Trainer`` mmmgen trains with: evaluation over whole windows (loss per note), the time-budget
learning-rate schedule, and the callbacks (samples at each evaluation, the training clock, the
progress bar over a ``--max-minutes`` budget).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from pathlib import Path

from mmmgen.config import TrainConfig
from mmmgen.text import vocab as V

log = logging.getLogger(__name__)

CLOCK_NAME = "mmmgen_clock.json"


# --- evaluation --------------------------------------------------------------------------------
def evaluate_blocks(model, dataset, collator, batch_size: int, note_ids, rank: int = 0, world: int = 1,
                    autocast=contextlib.nullcontext):
    """Summed NLL, predicted tokens and notes (``NOTE_ON`` words) over this process's share of blocks.

    Returns a float64 tensor ``[nll, tokens, notes]`` (sum it across processes for the whole split).
    """
    import torch
    import torch.nn.functional as F

    device = next(model.parameters()).device
    notes = torch.as_tensor(sorted(note_ids), device=device)
    sums = torch.zeros(3, dtype=torch.float64, device=device)
    mine = list(range(rank, len(dataset), world))
    with torch.no_grad():
        for start in range(0, len(mine), batch_size):
            batch = collator([dataset[i] for i in mine[start : start + batch_size]])
            batch = {k: v.to(device) for k, v in batch.items()}
            with autocast():
                logits = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False).logits
            target = batch["labels"][:, 1:]
            nll = F.cross_entropy(logits[:, :-1].float().transpose(1, 2), target, ignore_index=-100, reduction="sum")
            real = batch["input_ids"] != collator.pad_id
            sums += torch.stack([nll.double(), (target != -100).sum().double(),
                                 (torch.isin(batch["input_ids"], notes) & real).sum().double()])
    return sums


def loss_metrics(sums, prefix: str = "eval") -> dict:
    """Token loss, perplexity and loss per note from ``evaluate_blocks`` sums."""
    nll, tokens, notes = (float(x) for x in sums)
    loss = nll / max(tokens, 1.0)
    try:
        ppl = math.exp(loss)
    except OverflowError:
        ppl = float("inf")
    return {f"{prefix}_loss": loss, f"{prefix}_perplexity": ppl,
            f"{prefix}_loss_per_note": nll / notes if notes else float("nan"), f"{prefix}_notes": int(notes)}


def note_on_ids(tokenizer) -> list[int]:
    return [i for w, i in tokenizer.get_vocab().items() if V.parse_word(w).kind == V.NOTE_ON]


def time_schedule(progress: float, warmup: float) -> float:
    """Learning-rate factor at ``progress`` (share of the time budget used): linear warmup, cosine to 0."""
    if progress < warmup:
        return progress / warmup
    return 0.5 * (1 + math.cos(math.pi * min(1.0, (progress - warmup) / max(1e-9, 1 - warmup))))


def _make_trainer_class():
    """``Trainer`` whose evaluation reports loss, perplexity and loss per note over whole windows."""
    from transformers import Trainer
    from transformers.trainer_utils import EvalLoopOutput

    class MMMTrainer(Trainer):
        note_ids: tuple[int, ...] = ()
        budget: tuple | None = None  # (warmup ratio, ClockCallback with budget_s): learning rate over wall time

        _pending: tuple | None = None  # (tokens on the GPU, passes) not yet added to num_input_tokens_seen

        def _track_num_input_tokens(self, inputs):
            """On one GPU: sum a step's tokens on the device and read them once a step, not after every pass
            (each ``.item()`` makes the host wait for the GPU)."""
            ids = inputs.get("input_ids") if isinstance(inputs, dict) else None
            if (ids is None or ids.device.type != "cuda" or self.args.world_size > 1
                    or self.args.include_num_input_tokens_seen != "non_padding"):
                return super()._track_num_input_tokens(inputs)
            count = (ids != self.processing_class.pad_token_id).sum()
            tokens, passes = self._pending or (0, 0)
            self._pending = (tokens + count, passes + 1)
            if self._pending[1] >= self.args.gradient_accumulation_steps:
                self.state.num_input_tokens_seen += int(self._pending[0].item())
                self._pending = None
            return None

        def create_scheduler(self, num_training_steps: int, optimizer=None):
            if self.budget is None:
                return super().create_scheduler(num_training_steps, optimizer)
            from torch.optim.lr_scheduler import LambdaLR

            warmup, clock = self.budget
            if self.lr_scheduler is None:
                self.lr_scheduler = LambdaLR(optimizer or self.optimizer, lambda _: time_schedule(clock.total / clock.train_budget_s, warmup))
            return self.lr_scheduler

        def evaluation_loop(self, dataloader, description, prediction_loss_only=None, ignore_keys=None,
                            metric_key_prefix="eval"):
            model = self.accelerator.unwrap_model(self.model)
            was_training = model.training
            model.eval()
            sums = evaluate_blocks(model, self.eval_dataset, self.data_collator, self.args.per_device_eval_batch_size,
                                   self.note_ids, self.args.process_index, self.args.world_size, self.accelerator.autocast)
            model.train(was_training)
            if self.args.world_size > 1:
                sums = self.accelerator.reduce(sums, reduction="sum")
            metrics = loss_metrics(sums, metric_key_prefix)
            return EvalLoopOutput(predictions=None, label_ids=None, metrics=metrics, num_samples=len(self.eval_dataset))

    return MMMTrainer


# --- samples at each evaluation ----------------------------------------------------------------
def sample_piece(model, tokenizer, genre: str = V.OTHER_GENRE, time_signature: str = "4_4", tracks: int = 2,
                 max_tokens: int = 512, temperature: float = 0.75, seed: int = 0) -> str:
    """A short multitrack piece, one track at a time as in the tutorial (``TRACK_END`` ends a call)."""
    import torch

    text = f"{V.PIECE_START} {V.TIME_SIGNATURE}={time_signature} {V.genre(genre)} {V.TRACK_START}"
    end_id = tokenizer.convert_tokens_to_ids(V.TRACK_END)
    budget = max(8, max_tokens // max(tracks, 1))
    room = model.config.n_positions - budget
    devices = [model.device] if model.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), torch.no_grad():
        torch.manual_seed(seed)
        for t in range(tracks):
            ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"][:, -room:].to(model.device)
            out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=budget, do_sample=True,
                                 temperature=temperature, eos_token_id=end_id, pad_token_id=tokenizer.pad_token_id,
                                 use_cache=True)
            new = tokenizer.decode(out[0, ids.shape[1] :].tolist(), skip_special_tokens=True).strip()
            text = f"{text} {new}".strip()
            if not text.endswith(V.TRACK_END):
                text += f" {V.TRACK_END}"
            if t + 1 < tracks:
                text += f" {V.TRACK_START}"
    return text


def _make_callbacks():
    """``SampleCallback`` (a piece at each evaluation), ``ClockCallback`` (training time over resumes, the
    ``--max-minutes`` stop) and ``TimeProgressCallback`` (a progress bar over the time budget)."""
    from transformers import TrainerCallback
    from transformers.trainer_callback import ProgressCallback

    class SampleCallback(TrainerCallback):
        """At each evaluation, write a sample to ``RUN/samples/step-N.{txt,mid,wav}`` and log it."""

        def __init__(self, run_dir: Path, tokenizer, settings: dict, cfg: TrainConfig, writer=None):
            self.dir, self.tokenizer, self.settings, self.cfg, self.writer = run_dir / "samples", tokenizer, settings, cfg, writer
            self.audio = cfg.sample_audio
            self.next_step = 0  # --eval-steps apart, also when --keep-best evaluates more often

        def on_evaluate(self, args, state, control, model=None, **kwargs):
            if not state.is_world_process_zero or self.cfg.sample_tracks < 1 or model is None or state.global_step < self.next_step:
                return
            self.next_step = state.global_step + self.cfg.eval_steps
            genres = self.settings.get("genres") or {V.OTHER_GENRE: 1}
            was_training = model.training
            model.eval()
            try:
                text = sample_piece(model, self.tokenizer, max(genres, key=genres.get), tracks=self.cfg.sample_tracks,
                                    max_tokens=self.cfg.sample_max_tokens, temperature=self.cfg.sample_temperature,
                                    seed=self.cfg.seed + state.global_step)
            finally:
                model.train(was_training)
            stem = self.dir / f"step-{state.global_step:07d}"
            stem.parent.mkdir(parents=True, exist_ok=True)
            stem.with_suffix(".txt").write_text(text + "\n")
            if self.writer is not None:
                self.writer.add_text("sample", text, state.global_step)
            try:
                from mmmgen.render.files import write_midi
                from mmmgen.text.decode import text_to_score

                score = text_to_score(text, grid=self.settings["codec"].get("grid", 12))
                write_midi(score, stem.with_suffix(".mid"))
            except Exception as exc:  # an unplayable early sample must not stop training
                log.warning("sample at step %d not written as MIDI: %s", state.global_step, exc)
                return
            if self.audio:
                self._audio(score, stem, state.global_step, args)

        def _audio(self, score, stem: Path, step: int, args) -> None:
            from mmmgen.render import audio as A

            end = A.score_end_seconds(score)
            if end <= 0:  # e.g. a chord track and a track of empty bars: nothing to hear
                log.info("sample at step %d has no note: no audio", step)
                return
            try:
                wave, rate, _ = A.synthesize(score, sample_rate=22050)
                wave = A.finish_audio(wave, rate, min_seconds=end)
                A.write_wav(stem.with_suffix(".wav"), wave, rate)
            except Exception as exc:  # no SoundFont, no synthesizer: keep training, say it once
                log.warning("samples are not rendered as audio: %s", exc)
                self.audio = False
                return
            mono = wave.mean(axis=0)
            if self.writer is not None:
                import torch

                self.writer.add_audio("sample", torch.from_numpy(mono), step, sample_rate=rate)  # one channel, 1-D
            if "wandb" in (args.report_to or []):
                import wandb

                if wandb.run is not None:
                    wandb.log({"sample": wandb.Audio(mono, sample_rate=rate)}, step=step)

    class ClockCallback(TrainerCallback):
        """Training seconds summed over every session of a run, kept in each checkpoint.

        With a budget (``--max-minutes``), training stops early enough to leave room for the final
        evaluation and its sample: as long as the last evaluation (sample included) took
        (``reserve_s``, measured from the step end before it; nothing before the first).
        """

        def __init__(self, resume_from: Path | None, budget_s: float | None = None):
            self.before, self.budget_s, self.reserve_s = 0.0, budget_s, 0.0
            if resume_from is not None:
                with contextlib.suppress(OSError, ValueError, KeyError):
                    self.before = json.loads((resume_from / CLOCK_NAME).read_text())["train_seconds"]
            self.start = self.step_end = time.time()

        @property
        def total(self) -> float:
            return self.before + time.time() - self.start

        @property
        def train_budget_s(self) -> float:
            """The budget less the room kept for the final evaluation (at least half the budget)."""
            return max(self.budget_s - self.reserve_s, self.budget_s / 2)

        def on_step_end(self, args, state, control, **kwargs):
            self.step_end = time.time()
            if self.budget_s is not None and self.total >= self.train_budget_s:
                log.info("time budget of %.1f min reached at step %d (%.0f s kept for the final evaluation)",
                         self.budget_s / 60, state.global_step, self.budget_s - self.train_budget_s)
                control.should_training_stop = True

        def on_evaluate(self, args, state, control, **kwargs):  # after the sample callback's: its time counts
            self.reserve_s = time.time() - self.step_end

        def on_save(self, args, state, control, **kwargs):
            if state.is_world_process_zero:
                folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
                (folder / CLOCK_NAME).write_text(json.dumps({"train_seconds": round(self.total, 3)}))

    class TimeProgressCallback(ProgressCallback):
        """With ``--max-minutes``: the progress bar and its ETA count training time, not steps."""

        def __init__(self, clock):
            super().__init__()
            self.clock = clock

        def on_train_begin(self, args, state, control, **kwargs):
            from tqdm.auto import tqdm

            if state.is_world_process_zero:
                self.training_bar = tqdm(total=round(self.clock.budget_s), unit="s", dynamic_ncols=True, desc="training",
                                         initial=min(round(self.clock.total), round(self.clock.budget_s)))
            self.current_step = 0

        def on_step_end(self, args, state, control, **kwargs):
            if state.is_world_process_zero and self.training_bar is not None:
                self.training_bar.n = min(round(self.clock.total), self.training_bar.total)
                self.training_bar.set_postfix(step=state.global_step, refresh=False)
                self.training_bar.refresh()

    return SampleCallback, ClockCallback, TimeProgressCallback


def make_keep_best_callback():
    """``--keep-best``: a copy of the weights at each new lowest ``eval_loss``; ``restore`` puts it back
    once training has ended and the last weights were evaluated too.

    Kept in memory (a few MB for mmmgen's models), so evaluating every epoch costs no checkpoint
    writes; a resumed run keeps the best since it resumed.
    """
    from transformers import TrainerCallback

    class KeepBestCallback(TrainerCallback):
        def __init__(self):
            self.best_loss, self.best_step, self.weights = math.inf, None, None

        def on_evaluate(self, args, state, control, model=None, metrics=None, **kwargs):
            loss = (metrics or {}).get("eval_loss")
            if model is None or loss is None or not loss < self.best_loss:
                return
            self.best_loss, self.best_step = loss, state.global_step
            self.weights = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}

        def restore(self, model, step: int) -> bool:
            """Put the best weights back (after the last weights were evaluated); whether they differ."""
            if self.weights is None or self.best_step == step:
                return False
            model.load_state_dict(self.weights)
            log.info("--keep-best: the weights of step %d (test loss %.4f) replace those of step %d",
                     self.best_step, self.best_loss, step)
            return True

    return KeepBestCallback()


# --- checkpoints -------------------------------------------------------------------------------
