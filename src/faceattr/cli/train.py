"""`faceattr train CONFIG [key=value ...] [--resume RUN]`: train a recipe of ``configs/``."""

from __future__ import annotations

from pathlib import Path

import typer

from faceattr.cli import app

ARGS_HELP = "a YAML recipe (configs/*.yaml; none: the defaults), dotted overrides key=value"
RESUME_HELP = "continue this run folder from its last checkpoint, with its own config.yaml"


def split_arguments(arguments: list[str]) -> tuple[Path | None, list[str]]:
    """The recipe (the one argument without ``=``) and the ``key=value`` overrides."""
    from faceattr.training.config import ConfigError

    recipes = [a for a in arguments if "=" not in a]
    if len(recipes) > 1:
        raise ConfigError(f"one recipe expected, got {recipes}; overrides look like key=value")
    return (Path(recipes[0]) if recipes else None), [a for a in arguments if "=" in a]


@app.command("train")
def train_command(
    arguments: list[str] = typer.Argument(None, metavar="[CONFIG] [KEY=VALUE]...", help=ARGS_HELP),
    resume: Path | None = typer.Option(None, "--resume", help=RESUME_HELP),
) -> None:
    """Train a model; writes runs/<timestamp>-<name>/ (config, metrics, checkpoints)."""
    from faceattr.training.config import CONFIG_FILE, ConfigError, load_config
    from faceattr.training.trainer import process_rank, train  # Lightning: only for training

    try:
        recipe, overrides = split_arguments(arguments or [])
        if resume is not None:
            if recipe is not None:
                raise ConfigError(f"--resume uses {resume / CONFIG_FILE}; give no recipe")
            recipe = resume / CONFIG_FILE
        config = load_config(recipe, overrides)
        result = train(config, resume=resume)
    except (ConfigError, FileNotFoundError, KeyError, ValueError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from error
    if process_rank() != 0:
        return
    typer.echo(f"run: {result.run_dir} ({result.epochs} epochs, {result.seconds:.0f} s)")
    best = "n/a" if result.best_score is None else f"{result.best_score:.4f}"
    typer.echo(f"best {config.schedule.monitor}: {best} -> {result.best}")
    accuracy = result.metrics.get("val/mean_accuracy")
    if accuracy is not None:
        typer.echo(f"last val/mean_accuracy: {accuracy:.4f}")
