"""`faceattr sweep CONFIG (--grid key=A,B ... | --trials N --space key=float:LOW:HIGH[:log] ...)`:
hyper-parameter sweeps with Optuna (grid: seeds 000 and 004; TPE: seed 003's Bayesian sweep)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from faceattr.cli import app
from faceattr.cli.train import ARGS_HELP, split_arguments

if TYPE_CHECKING:
    from faceattr.training.sweep import SearchParam

GRID_HELP = "key=A,B,...: a grid axis; every combination of the axes is one trial"
SPACE_HELP = "key=float:LOW:HIGH[:log], key=int:LOW:HIGH[:log] or key=choice:A,B (with --trials)"
TRIALS_HELP = "complete trials wanted from the TPE sampler, counting those a previous run finished"
OUT_HELP = "output folder: trial runs, sweep.db, trials.csv, best.yaml; a rerun with the same one "
OUT_HELP += "resumes (default: <trainer.output_dir>/sweep-<trainer.name>)"
STORAGE_HELP = "Optuna storage URL (default: sqlite:///OUT/sweep.db)"
JOBS_HELP = "trials run at once, each in its own process sharing the storage"


def search_params(grid: list[str], space: list[str], trials: int | None) -> list[SearchParam]:
    """The swept parameters of either ``--grid`` or ``--space`` (with ``--trials``)."""
    from faceattr.training.sweep import SearchParam

    if bool(grid) == bool(space):
        raise ValueError("give either --grid axes or --space ranges (with --trials)")
    if grid and trials is not None:
        raise ValueError("a grid runs each of its combinations once: drop --trials")
    if space and trials is None:
        raise ValueError("--space needs --trials N")
    return [SearchParam.grid(g) for g in grid] or [SearchParam.parse(s) for s in space]


class DirectionChoice(str, Enum):
    """Whether the sweep maximises or minimises its metric."""

    maximize = "maximize"
    minimize = "minimize"


@app.command("sweep")
def sweep_command(
    arguments: list[str] = typer.Argument(None, metavar="[CONFIG] [KEY=VALUE]...", help=ARGS_HELP),
    grid: list[str] = typer.Option(None, "--grid", help=GRID_HELP),
    space: list[str] = typer.Option(None, "--space", help=SPACE_HELP),
    trials: int | None = typer.Option(None, "--trials", min=1, help=TRIALS_HELP),
    metric: str = typer.Option("val/mean_accuracy", "--metric", help="the objective"),
    direction: DirectionChoice = typer.Option(DirectionChoice.maximize, "--direction"),
    out: Path | None = typer.Option(None, "--out", help=OUT_HELP),
    storage: str | None = typer.Option(None, "--storage", help=STORAGE_HELP),
    jobs: int = typer.Option(1, "--jobs", min=1, help=JOBS_HELP),
    seed: int = typer.Option(0, "--seed", help="seed of the samplers"),
) -> None:
    """Sweep hyper-parameters of a recipe; prints the trials and writes best.yaml."""
    from faceattr.training.config import ConfigError, load_config
    from faceattr.training.sweep import SweepSpec, sweep  # Lightning: only for training

    try:
        recipe, overrides = split_arguments(arguments or [])
        params = search_params(grid or [], space or [], trials)
        base = load_config(recipe, overrides)
        spec = SweepSpec(
            recipe=str(recipe) if recipe is not None else None,
            overrides=tuple(overrides),
            out=out or Path(base.trainer.output_dir) / f"sweep-{base.trainer.name}",
            params=tuple(params),
            grid=bool(grid),
            metric=metric,
            direction=direction.value,
            storage=storage,
            seed=seed,
        )
        result = sweep(spec, trials, jobs)
    except (ConfigError, FileNotFoundError, KeyError, ValueError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from error
    typer.echo(result.table().to_string(index=False, float_format="%.4g"))
    if result.best is not None:
        typer.echo(f"best: trial {result.best.number}, {metric} = {result.best.value:.4f}")
        typer.echo(f"its config: {result.best_config} (faceattr train {result.best_config})")
