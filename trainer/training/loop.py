"""The training run, top to bottom: data, model, optimiser, loop, checkpoints, output.

Written against `accelerate` directly rather than transformers' Trainer, for three
reasons: checkpoints must be atomic and hold only the trainable weights (a Trainer
checkpoint of a LoRA run also writes partial folders that a crash leaves behind),
the loss is computed in chunks from hidden states so large batches fit, and the data
order is a pure function of (seed, step), so a resumed run sees exactly the batches an
uninterrupted run would. `accelerate launch` runs the same code on several GPUs.
"""

from __future__ import annotations

import json
import math
import platform
import shutil
import signal
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Callable

import torch

from ghostframe.server.inference.model_loading import (
    ADAPTER_METADATA,
    ModelLoadError,
    base_model_fingerprint,
    load_tokenizer_and_model,
    pick_device,
    resolve_model_path,
)
from ghostframe.server.inference.progress import Reporter
from ghostframe.trainer.training.checkpoints import (
    CheckpointError,
    TrainingProgress,
    checkpoint_dirs,
    load_checkpoint,
    save_checkpoint,
)
from ghostframe.trainer.config import TrainConfig
from ghostframe.trainer.training.benchmark import decoder_layer_index
from ghostframe.trainer.training.budget import (
    MEASURED_STEPS,
    BudgetPlan,
    GateTiming,
    RunSize,
    past_deadline,
    plan_budget,
)
from ghostframe.trainer.training.forecast import Forecast, base_parameters, forecast, recipe_of
from ghostframe.trainer.data.corpus import CorpusError, build_corpus
from ghostframe.trainer.training.loss import CausalLMLoss, keytoken_ids
from ghostframe.trainer.training.metrics import MetricsLog, perplexity, plot_losses, read_metrics
from ghostframe.trainer.data.packing import packed_blocks


class TrainingError(RuntimeError):
    """A run that cannot start or go on; the message says why and what to do."""


class Interrupted(Exception):
    """Ctrl-C: the run saved a checkpoint and stopped."""


class RunPaths:
    """Where everything goes: final artefacts in `output`, resumable state in `output/work`."""

    def __init__(self, output: Path):
        self.output = output
        self.work = output / "work"
        self.config = self.work / "config.json"
        self.data = self.work / "data"
        self.cache = self.work / "datasets-cache"
        self.checkpoints = self.work / "checkpoints"
        self.budget_plan = self.work / "budget.json"
        self.metrics = output / "metrics.jsonl"
        self.tensorboard = output / "tensorboard"
        self.plot = output / "loss.png"


def _stderr(message: str) -> None:
    print(f"ghostframe-train: {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- setup


def prepare_output(cfg: TrainConfig, paths: RunPaths, report: Reporter) -> TrainConfig:
    """Create or reopen the output folder; on --resume return the saved configuration."""
    has_run = paths.config.is_file()
    if cfg.resume and has_run:
        saved = TrainConfig.from_json_file(paths.config)
        if not cfg.sources and not cfg.datasets:
            cfg.sources, cfg.datasets = saved.sources, saved.datasets
        differences = cfg.differences(saved)
        if differences:
            raise TrainingError(
                "--resume with options that change the result: " + "; ".join(differences)
                + ". Use the run's original options, or start a new run with --overwrite."
            )
        return cfg
    if cfg.resume:
        report(f"--resume: no earlier run in {paths.output}, starting a new one")
    elif has_run or checkpoint_dirs(paths.checkpoints):
        if not cfg.overwrite:
            last = checkpoint_dirs(paths.checkpoints)
            where = f" (last checkpoint {last[-1].name})" if last else ""
            raise TrainingError(
                f"{paths.output} already holds a training run{where}. Add --resume to continue it, "
                "or --overwrite to start again from scratch, or choose another --output."
            )
        shutil.rmtree(paths.work, ignore_errors=True)
    if not cfg.sources and not cfg.datasets:
        raise TrainingError("Give at least one source folder or --dataset.")
    paths.work.mkdir(parents=True, exist_ok=True)
    paths.config.write_text(cfg.to_json())
    return cfg


def prepare_data(cfg: TrainConfig, paths: RunPaths, report: Reporter) -> dict:
    """Build the clean corpus once per run (a resumed run reuses it, so its data cannot drift)."""
    if (paths.data / "data_report.json").is_file():
        report(f"reusing the corpus prepared in {paths.data}")
        return json.loads((paths.data / "data_report.json").read_text())
    report("reading sources: " + ", ".join(cfg.sources + [d["name_or_path"] for d in cfg.datasets]))
    data_report = build_corpus(
        paths.data, cfg.sources, cfg.dataset_sources(), cfg.corpus_options(), exclude=(paths.output,)
    )
    report(data_report.summary())
    return data_report.to_dict()


def build_model(cfg: TrainConfig, device: str, dtype: torch.dtype, report: Reporter):
    """Base model from the server's loader, wrapped in LoRA unless --full."""
    # An empty --model means the model the server runs by default on this device, so the
    # adapter fits what will serve it.
    source, name = resolve_model_path(cfg.model, report, "cuda" if device.startswith("cuda") else "cpu")
    # LoRA keeps the frozen base in the device dtype (bf16 on CUDA); full fine-tuning keeps
    # fp32 master weights and lets autocast do bf16.
    tokenizer, model = load_tokenizer_and_model(source, torch.float32 if cfg.full else dtype, name)
    fingerprint = base_model_fingerprint(model)
    model.config.use_cache = False
    if cfg.full:
        report(f"full fine-tuning of {name}")
    else:
        from peft import LoraConfig, get_peft_model

        layers = model.config.num_hidden_layers
        if not 0 <= cfg.lora_layers <= layers:
            raise TrainingError(f"--lora-layers {cfg.lora_layers}: {name} has {layers} decoder layers (0 adapts all)")
        if cfg.lora_targets != "all-linear":
            targets = cfg.lora_targets.split(",")
        elif cfg.lora_layers:  # peft takes layers_to_transform only with named modules
            targets = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules()
                              if isinstance(m, torch.nn.Linear) and decoder_layer_index(n) is not None})
        else:
            targets = "all-linear"
        lora = LoraConfig(
            task_type="CAUSAL_LM", r=cfg.lora_r, lora_alpha=cfg.lora_alpha,
            lora_dropout=cfg.lora_dropout, target_modules=targets,
            # Only the top layers: autograd then never goes below them (the frozen layers
            # underneath only run forward), which is what makes this cheaper per step.
            layers_to_transform=list(range(layers - cfg.lora_layers, layers)) if cfg.lora_layers else None,
        )
        model = get_peft_model(model, lora)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    report(f"model {name}: {total / 1e6:.1f}M parameters, {trainable / 1e6:.2f}M trainable")
    return tokenizer, model, name, fingerprint, source


# --------------------------------------------------------------------------- data order


def batch_indices(step: int, micro: int, rank: int, world: int, batch_size: int, grad_accum: int,
                  num_blocks: int, seed: int) -> list[int]:
    """Block indices of one micro-batch: a pure function of the step, so resume repeats it exactly.

    Blocks are visited in a fresh seeded permutation each epoch.
    """
    global_batch = batch_size * grad_accum * world
    first = step * global_batch + (micro * world + rank) * batch_size
    indices, permutations = [], {}
    for position in range(first, first + batch_size):
        epoch, offset = divmod(position, num_blocks)
        if epoch not in permutations:
            generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
            permutations[epoch] = torch.randperm(num_blocks, generator=generator)
        indices.append(int(permutations[epoch][offset]))
    return indices


# --------------------------------------------------------------------------- evaluation


@torch.no_grad()
def evaluate(loss_module, blocks, cfg: TrainConfig, accelerator) -> float | None:
    """Mean next-token loss on (at most eval_batches batches of) the valid blocks, all processes."""
    if len(blocks) == 0:
        return None
    loss_module.eval()
    batches = math.ceil(len(blocks) / cfg.batch_size)
    if cfg.eval_batches:
        batches = min(batches, cfg.eval_batches)
    total = torch.zeros(2, device=accelerator.device, dtype=torch.float64)
    for index in range(accelerator.process_index, batches, accelerator.num_processes):
        ids = blocks[index * cfg.batch_size : (index + 1) * cfg.batch_size]["input_ids"].to(accelerator.device)
        with accelerator.autocast():
            loss = loss_module(ids, weighted=False)
        total += torch.tensor([loss.item() * ids.shape[0], ids.shape[0]], device=total.device, dtype=torch.float64)
    total = accelerator.reduce(total, "sum") if accelerator.num_processes > 1 else total
    loss_module.train()
    return float(total[0] / total[1])


# --------------------------------------------------------------------------- Ctrl-C


class StopRequest:
    """First Ctrl-C asks the loop to save and stop after the current step; a second one aborts."""

    def __init__(self, report: Reporter):
        self.requested = False
        self.report = report
        self._previous = None

    def __enter__(self):
        self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc):
        signal.signal(signal.SIGINT, self._previous)

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        self.report("Ctrl-C: saving a checkpoint after this step (press Ctrl-C again to stop without saving)")


# --------------------------------------------------------------------------- the run


def train(cfg: TrainConfig, report: Reporter = _stderr, measure_gate: Callable[[], GateTiming] | None = None,
          run_started: float | None = None, gate_context: str | None = None) -> dict:
    """Run (or resume) training and write the adapter; returns the final metrics (empty on
    every process but the main one).

    With cfg.budget, the step count is planned after MEASURED_STEPS timed steps, from the time
    spent since `run_started` (a perf_counter reading; default: now) and the gate's cost as
    `measure_gate` measures it (None: no gate). Before training (with a budget, once planned) the
    run says what its steps buy and forecasts the gate that follows it, whose prompts get
    `gate_context` (None: no gate follows; see training.forecast).
    """
    run_started = time.perf_counter() if run_started is None else run_started
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from tqdm.auto import tqdm
    from transformers import get_cosine_schedule_with_warmup

    paths = RunPaths(Path(cfg.output).expanduser().resolve())
    device, dtype = pick_device(cfg.device)
    cfg = cfg.for_device(device)
    accelerator = Accelerator(cpu=device == "cpu", mixed_precision="bf16" if device == "cuda" else "no")
    main = accelerator.is_main_process
    say = report if main else (lambda _: None)
    if cfg.budget and cfg.max_steps:
        raise TrainingError("--budget picks the number of steps; give --budget or --max-steps, not both.")

    # 1. output folder and data (the main process prepares, the others wait and reuse)
    if main:
        cfg = prepare_output(cfg, paths, say)
        data_report = prepare_data(cfg, paths, say)
    accelerator.wait_for_everyone()
    if not main:
        cfg = TrainConfig.from_json_file(paths.config) if cfg.resume else cfg
        data_report = json.loads((paths.data / "data_report.json").read_text())

    # 2. model, tokenizer, packed blocks
    set_seed(cfg.seed)
    tokenizer, model, model_name, fingerprint, model_source = build_model(cfg, device, dtype, say)
    with accelerator.main_process_first():
        train_blocks = packed_blocks(paths.data / "train.jsonl", tokenizer, cfg.context_length, paths.cache, cfg.num_proc)
        valid_blocks = packed_blocks(paths.data / "valid.jsonl", tokenizer, cfg.context_length, paths.cache, cfg.num_proc)
    if len(train_blocks) == 0:
        raise TrainingError(
            f"The training text is shorter than one block of {cfg.context_length} tokens; "
            "add sources or lower --context-length."
        )
    if len(valid_blocks) == 0:
        say("warning: the valid split has less than one block of text; no validation loss will be reported")
    world = accelerator.num_processes
    tokens_per_step = cfg.batch_size * cfg.grad_accum * world * cfg.context_length
    steps_per_epoch = max(1, len(train_blocks) // (cfg.batch_size * cfg.grad_accum * world))
    # With --budget the step count is provisional (one pass) until the first steps are timed,
    # unless a resumed run already planned it.
    plan = None
    if cfg.budget and paths.budget_plan.is_file():
        plan = BudgetPlan(**json.loads(paths.budget_plan.read_text()))
    max_steps = plan.max_steps if plan else cfg.max_steps or steps_per_epoch
    if cfg.budget and not plan:
        max_steps = max(max_steps, MEASURED_STEPS)
    warmup = _warmup(cfg, max_steps)
    # --- what the steps buy, and the gate's forecast (training.forecast) ---
    train_tokens = len(train_blocks) * cfg.context_length
    parameters = base_parameters(model)

    def foresee(steps: int, budget_plan: BudgetPlan | None) -> Forecast:
        return forecast(RunSize(steps, tokens_per_step, train_tokens), fingerprint, model_name, parameters,
                        gate_context, recipe_of(cfg, world), device, budget_plan)

    run_forecast = None if cfg.budget and not plan else foresee(max_steps, plan)
    say(f"{len(train_blocks)} train and {len(valid_blocks)} valid blocks of {cfg.context_length} tokens; "
        + (f"steps to fit the budget are picked after {MEASURED_STEPS} timed steps" if run_forecast is None else
           RunSize(max_steps, tokens_per_step, train_tokens).describe()))
    if run_forecast is not None:
        say(run_forecast.text)
    # --- end of what the steps buy ---

    # 3. loss, optimiser, schedule, accelerator
    loss_module = CausalLMLoss(
        model, keytoken_ids(tokenizer, cfg.keytokens) if cfg.keytoken_weight > 0 else [],
        cfg.keytoken_weight, cfg.chunk_tokens,
    )
    if cfg.compile:
        loss_module.compile_decoder()
    loss_module.to(accelerator.device)  # before the optimizer, so fused AdamW sees CUDA parameters
    learning_rate = cfg.resolved_learning_rate()
    trainable = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in trainable if p.ndim >= 2]
    no_decay = [p for p in trainable if p.ndim < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=learning_rate, betas=(0.9, 0.95), fused=device == "cuda",
    )
    scheduler = get_cosine_schedule_with_warmup(optimizer, warmup, max_steps)
    loss_module, optimizer = accelerator.prepare(loss_module, optimizer)

    # 4. resume
    progress = TrainingProgress()
    if cfg.resume:
        for checkpoint in reversed(checkpoint_dirs(paths.checkpoints)):
            try:
                progress = load_checkpoint(checkpoint, model, optimizer, scheduler)
                say(f"resumed from {checkpoint} (step {progress.step})")
                break
            except CheckpointError as exc:
                say(f"{exc}; trying the previous checkpoint")
        else:
            if checkpoint_dirs(paths.checkpoints):
                raise TrainingError(
                    f"No checkpoint in {paths.checkpoints} can be read. Start again with --overwrite."
                )
    metrics = MetricsLog(paths.metrics, paths.tensorboard, progress.step, enabled=main)

    def record_forecast(said: Forecast) -> None:
        metrics.event(progress.step, "forecast", verdict=said.verdict, epochs=round(said.size.epochs, 3),
                      steps=said.size.steps, text=said.text)

    if run_forecast is not None and progress.step == 0:
        record_forecast(run_forecast)

    # 5. the loop
    loss_module.train()
    eval_started = time.perf_counter()
    if progress.step == 0:
        valid_loss = evaluate(loss_module, valid_blocks, cfg, accelerator)
        if valid_loss is not None:
            metrics.log(0, "valid", loss=valid_loss, perplexity=perplexity(valid_loss))
            say(f"step 0: valid loss {valid_loss:.4f}, perplexity {perplexity(valid_loss):.2f}")
    eval_seconds = time.perf_counter() - eval_started  # what each validation will cost (0 when resumed)
    bar = tqdm(total=max_steps, initial=progress.step, disable=not main or cfg.quiet, file=sys.stderr,
               desc="training", unit="step", dynamic_ncols=True)
    # Sums since the last logged train loss, divided by the steps actually summed (fewer after a resume).
    running_loss, running_steps, running_tokens, running_time = 0.0, 0, 0, 0.0

    def log_train_loss(total_steps: int) -> None:
        nonlocal running_loss, running_steps, running_tokens, running_time
        metrics.log(progress.step, "train", loss=running_loss / running_steps, lr=scheduler.get_last_lr()[0],
                    tokens_per_second=running_tokens / running_time, tokens_seen=progress.tokens_seen,
                    max_steps=total_steps)  # editors show "step N/M" and the time left
        running_loss, running_steps, running_tokens, running_time = 0.0, 0, 0, 0.0

    def validates_after(step: int) -> bool:
        """Whether a mid-run validation follows optimizer step number `step`."""
        return step % cfg.eval_every == 0 and step < max_steps

    step_times: list[float] = []  # of this process's steps, for --budget
    planned_here = False          # a --budget plan made by this process, whose clock it keeps
    stopped, ended_early = False, None
    with StopRequest(say) as stop:
        while progress.step < max_steps:
            step = progress.step
            late = planned_here and past_deadline(plan, time.perf_counter() - run_started, step_times,
                                                  validates=validates_after(step + 1))
            if world > 1:
                flags = accelerator.reduce(torch.tensor([float(stop.requested), float(late)],
                                                        device=accelerator.device), "max")
                stop.requested, late = bool(flags[0].item()), bool(flags[1].item())
            if stop.requested:
                stopped = True
                break
            if late:
                ended_early = step
                if main:
                    bar.write(f"ghostframe-train: step {step} of {max_steps}: the steps got slower than measured; "
                              "training ends here so that the final validation and the gate still fit the budget",
                              file=sys.stderr)
                break
            started = time.perf_counter()
            step_loss = 0.0
            for micro in range(cfg.grad_accum):
                ids = batch_indices(step, micro, accelerator.process_index, world, cfg.batch_size,
                                    cfg.grad_accum, len(train_blocks), cfg.seed)
                input_ids = train_blocks[ids]["input_ids"].to(accelerator.device)
                sync = nullcontext() if micro == cfg.grad_accum - 1 else accelerator.no_sync(loss_module)
                with sync, accelerator.autocast():
                    loss = loss_module(input_ids) / cfg.grad_accum
                    accelerator.backward(loss)
                step_loss += loss.item()
            if cfg.max_grad_norm:
                accelerator.clip_grad_norm_(trainable, cfg.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            progress.step += 1
            elapsed = time.perf_counter() - started
            progress.tokens_seen += tokens_per_step
            progress.elapsed_seconds += elapsed
            running_loss += step_loss
            running_steps += 1
            running_tokens += tokens_per_step
            running_time += elapsed
            step_times.append(elapsed)
            bar.update(1)
            bar.set_postfix(loss=f"{step_loss:.3f}", tok_s=f"{tokens_per_step / elapsed:,.0f}")
            if cfg.budget and plan is None and len(step_times) == MEASURED_STEPS:
                # --budget: the steps just timed decide how many fit; the schedule is rebuilt for
                # that many, continuing from this step.
                plan = _plan(cfg, paths, accelerator, run_started, step_times, eval_seconds, measure_gate,
                             tokens_per_step, train_tokens)
                planned_here = True
                max_steps, warmup = plan.max_steps, _warmup(cfg, plan.max_steps)
                scheduler = get_cosine_schedule_with_warmup(optimizer, warmup, max_steps, last_epoch=progress.step - 1)
                bar.total = max_steps
                bar.refresh()
                run_forecast = foresee(max_steps, plan)
                record_forecast(run_forecast)
                if main:
                    bar.write(f"ghostframe-train: {plan.describe()}", file=sys.stderr)
                    bar.write(f"ghostframe-train: {run_forecast.text}", file=sys.stderr)
            if progress.step % cfg.log_every == 0 or progress.step == max_steps:
                log_train_loss(max_steps)
            if validates_after(progress.step):
                valid_loss = evaluate(loss_module, valid_blocks, cfg, accelerator)
                if valid_loss is not None:
                    metrics.log(progress.step, "valid", loss=valid_loss, perplexity=perplexity(valid_loss))
                    bar.write(f"step {progress.step}: valid loss {valid_loss:.4f}, "
                              f"perplexity {perplexity(valid_loss):.2f}", file=sys.stderr)
            if progress.step % cfg.save_every == 0 and progress.step < max_steps:
                _save(accelerator, paths, model, optimizer, scheduler, progress, cfg, metrics, bar)
    bar.close()

    if stopped:
        _save(accelerator, paths, model, optimizer, scheduler, progress, cfg, metrics, None)
        metrics.close()
        raise Interrupted(
            f"Stopped at step {progress.step} of {max_steps}; the checkpoint is in {paths.checkpoints}. "
            f"To continue: ghostframe-train --output {paths.output} --resume"
        )

    if ended_early is not None and running_steps:
        log_train_loss(progress.step)

    # 6. final evaluation and output
    valid_loss = evaluate(loss_module, valid_blocks, cfg, accelerator)
    if valid_loss is not None:
        metrics.log(progress.step, "valid", loss=valid_loss, perplexity=perplexity(valid_loss))
    metrics.close()
    if not main:
        return {}
    history = read_metrics(paths.metrics)
    valid_history = [r for r in history if r["split"] == "valid"]
    train_history = [r for r in history if r["split"] == "train"]
    final = {
        "steps": progress.step,
        "tokens_seen": progress.tokens_seen,
        "train_seconds": round(progress.elapsed_seconds, 1),
        "tokens_per_second": round(progress.tokens_seen / max(progress.elapsed_seconds, 1e-9), 1),
        "train_loss_last": train_history[-1]["loss"] if train_history else None,
        "valid_loss_before": valid_history[0]["loss"] if valid_history else None,
        "valid_loss_after": valid_loss,
        "valid_perplexity_before": valid_history[0]["perplexity"] if valid_history else None,
        "valid_perplexity_after": perplexity(valid_loss) if valid_loss is not None else None,
    }
    write_output(paths, accelerator.unwrap_model(loss_module).model, tokenizer, cfg, model_name, model_source,
                 fingerprint, data_report, final, {"max_steps": max_steps, "warmup_steps": warmup,
                                                   "learning_rate": learning_rate, "num_processes": world},
                 {**plan.to_dict(), **({"ended_early_at_step": ended_early} if ended_early is not None else {})}
                 if plan else None, run_forecast.to_dict() if run_forecast else None)
    plot_losses(paths.metrics, paths.plot)
    if valid_loss is not None:
        say(f"valid perplexity {final['valid_perplexity_before']:.2f} -> {final['valid_perplexity_after']:.2f}")
    say(f"adapter written to {paths.output}; use it with: ghostframe-server --adapter {paths.output}"
        + (f" --model {cfg.model}" if cfg.model else ""))
    return final


def _warmup(cfg: TrainConfig, max_steps: int) -> int:
    return cfg.warmup_steps if cfg.warmup_steps is not None else max(1, round(0.05 * max_steps))


def _plan(cfg: TrainConfig, paths: RunPaths, accelerator, run_started: float, step_times: list[float],
          eval_seconds: float, measure_gate: Callable[[], GateTiming] | None, tokens_per_step: int = 0,
          train_tokens: int = 0) -> BudgetPlan:
    """--budget: the main process measures the gate and plans; every process gets its step count."""
    plan = None
    if accelerator.is_main_process:
        gate = measure_gate() if measure_gate else None
        plan = plan_budget(cfg.budget, time.perf_counter() - run_started, step_times, eval_seconds, cfg.eval_every, gate,
                           tokens_per_step, train_tokens)
        paths.budget_plan.write_text(json.dumps(plan.to_dict()))  # a resumed run keeps this plan
    if accelerator.num_processes > 1:
        from accelerate.utils import broadcast_object_list

        plan = broadcast_object_list([plan])[0]
    return plan


def _save(accelerator, paths, model, optimizer, scheduler, progress, cfg, metrics, bar) -> None:
    """Checkpoint on the main process; a failure stops the run with the message of CheckpointError."""
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        where = save_checkpoint(paths.checkpoints, model, optimizer, scheduler, progress, cfg.keep_checkpoints)
        if bar is not None:
            bar.write(f"checkpoint {where.name} saved", file=sys.stderr)
    accelerator.wait_for_everyone()


def _versions() -> dict:
    import accelerate
    import peft
    import transformers

    from ghostframe.server import __version__ as ghostframe_version

    return {
        "ghostframe": ghostframe_version, "python": platform.python_version(), "torch": torch.__version__,
        "transformers": transformers.__version__, "peft": peft.__version__, "accelerate": accelerate.__version__,
    }


def write_output(paths: RunPaths, model, tokenizer, cfg: TrainConfig, model_name: str, model_source: str,
                 fingerprint: str, data_report: dict, final: dict, resolved: dict, budget: dict | None,
                 forecast_record: dict | None = None) -> None:
    """The deliverable: adapter (or full model) as safetensors, tokenizer, and ghostframe.json."""
    model.save_pretrained(str(paths.output), safe_serialization=True)
    (paths.output / "README.md").unlink(missing_ok=True)  # peft's empty model card
    tokenizer.save_pretrained(str(paths.output))
    metadata = {
        "kind": "full" if cfg.full else "lora",
        "base_model": {"name": model_name, "fingerprint": fingerprint, "source": model_source},
        "data": data_report,
        "config": json.loads(cfg.to_json()),
        "resolved": resolved,
        "metrics": final,
        **({"budget": budget} if budget else {}),
        **({"forecast": forecast_record} if forecast_record else {}),  # what training.forecast said before training
        "versions": _versions(),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    (paths.output / ADAPTER_METADATA).write_text(json.dumps(metadata, indent=2))
    if not cfg.full:
        write_gguf_lora(paths.output)


def write_gguf_lora(output: Path, report: Reporter = _stderr) -> None:
    """The adapter also as a llama.cpp GGUF LoRA beside it, for the llama.cpp engine; a failure only
    warns: the run's adapter is written, and the server exports it again when it needs it."""
    from ghostframe.server.inference.gguf_adapter import export_gguf_lora

    try:
        export_gguf_lora(output)
    except Exception as exc:  # noqa: BLE001 - whatever fails here, the trained adapter is kept
        report(f"warning: no llama.cpp adapter (adapter.gguf) was written: {type(exc).__name__}: {exc}")


__all__ = ["CheckpointError", "CorpusError", "Interrupted", "ModelLoadError", "TrainingError", "train"]
