"""``faceattr evaluate RUN_OR_EXPORT`` and ``faceattr compare RUN_OR_EVAL...``."""

from __future__ import annotations

from pathlib import Path

import typer

from faceattr.cli import app
from faceattr.evaluation.thresholds import OBJECTIVES


def user_errors() -> tuple[type[Exception], ...]:
    """The errors of bad input (a path, name or file): reported by :func:`fail`, not raised."""
    from faceattr.data.formats import AnnotationError
    from faceattr.training.checkpoint import UnsafeCheckpointError

    return (AnnotationError, FileNotFoundError, KeyError, ValueError, UnsafeCheckpointError)


def fail(error: Exception) -> typer.Exit:
    """Print ``error`` to stderr; the exit (code 2) to raise."""
    typer.echo(f"error: {error}", err=True)
    return typer.Exit(2)


def parse_dataset(dataset: str | None, root: Path | None) -> tuple[str | None, Path | None]:
    """``--dataset FORMAT:PATH`` or ``PATH`` (or ``--root PATH``) -> (format or None, path)."""
    from faceattr.data.loaders import list_formats

    if dataset is None:
        return None, root
    if root is not None:
        raise ValueError("give --dataset or --root, not both")
    head, sep, tail = dataset.partition(":")
    if sep and head in list_formats():
        return head, Path(tail).expanduser()
    if sep and not Path(dataset).exists() and "/" not in head:
        raise ValueError(
            f"--dataset {dataset!r}: unknown format {head!r}; known: {', '.join(list_formats())}"
        )
    return None, Path(dataset).expanduser()


def parse_aliases(pairs: list[str]) -> dict[str, str]:
    """``["DATA=MODEL", ...]`` -> ``{DATA: MODEL}``."""
    aliases = {}
    for pair in pairs:
        data, sep, model = pair.partition("=")
        if not sep or not data.strip() or not model.strip():
            raise ValueError(f"--alias {pair!r}: expected DATA=MODEL")
        aliases[data.strip()] = model.strip()
    return aliases


@app.command("evaluate")
def evaluate_command(
    target: Path = typer.Argument(..., help="A run folder (its best/ model) or an export folder."),
    dataset: str | None = typer.Option(
        None,
        "--dataset",
        help="Dataset to score, FORMAT:PATH or PATH (format detected): lfwa:~/data/lfw, "
        "celebahq:..., a folder+CSV; default: the one the model was trained on. Another dataset "
        "is scored on the attributes both label (the rest are named).",
    ),
    root: Path | None = typer.Option(None, "--root", help="Same as --dataset PATH."),
    annotations: list[Path] = typer.Option(
        [], "--annotations", help="More folders with the dataset's annotation files (repeatable)."
    ),
    alias: list[str] = typer.Option(
        [],
        "--alias",
        help="DATA=MODEL: a dataset attribute that is the model's MODEL (repeatable).",
    ),
    protocols: str = typer.Option("A,C,D,T", "--protocols", help="Test sets, comma-separated."),
    split: str = typer.Option("test", "--split", help="Split to evaluate: test, val or train."),
    tune: str = typer.Option(
        "accuracy",
        "--tune",
        help=f"Tune per-attribute thresholds on val protocol A for {' or '.join(OBJECTIVES)}; "
        "none: the model's stored thresholds, else 0.5.",
    ),
    protocol_dir: Path | None = typer.Option(
        None, "--protocol-dir", help="Protocols from `faceattr data protocols` (default: cached)."
    ),
    batch_size: int = typer.Option(256, "--batch-size", help="Crops per forward pass."),
    out: Path | None = typer.Option(None, "--out", help="Output folder (default: RUN/eval)."),
    save_thresholds: bool = typer.Option(
        True, "--save-thresholds/--no-save-thresholds", help="Write tuned thresholds to model.json."
    ),
    limit: int | None = typer.Option(None, "--limit", help="Only the first N images per split."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:1, ..."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bars."),
    slices: bool = typer.Option(
        True, "--slices/--no-slices", help="Accuracy within Male/Young/Eyeglasses/Pale_Skin groups."
    ),
    robustness: bool = typer.Option(
        False, "--robustness", help="Accuracy curves under test-time rotation, scale and shift."
    ),
    calibrate: bool | None = typer.Option(
        None,
        "--calibrate/--no-calibrate",
        help="Fit a per-attribute calibration on val protocol A (temperature, Platt or isotonic, "
        "chosen by held-out NLL) and tune the thresholds on its scale; default: only for a model "
        "without one. --no-calibrate: the model's raw probabilities (a stored calibration is "
        "dropped with the thresholds saved).",
    ),
    detect: bool = typer.Option(
        False,
        "--detect",
        help="Run the face detector first when the split's images have no landmark or box file "
        "(as `faceattr data landmarks`).",
    ),
) -> None:
    """Score a model on the protocols; write eval.json, predictions and the error table."""
    from faceattr.evaluation.evaluate import (
        TUNE_CHOICES,
        ScoringOptions,
        Tune,
        evaluate_model,
        format_calibration,
        format_error_table,
        format_kind_table,
        resolve_target,
        write_eval,
    )

    try:
        if tune not in TUNE_CHOICES:
            raise ValueError(f"--tune must be one of {', '.join(TUNE_CHOICES)}, got {tune!r}")
        if limit is not None and limit <= 0:
            raise ValueError(f"--limit must be positive, got {limit}")
        chosen_tune: Tune = tune  # type: ignore[assignment]  # checked above
        format, path = parse_dataset(dataset, root)
        result = evaluate_model(
            target,
            root=path,
            format=format,
            annotations=annotations,
            aliases=parse_aliases(alias),
            protocols=protocols,
            split=split,
            tune=chosen_tune,
            protocol_dir=protocol_dir,
            save_tuned=save_thresholds,
            options=ScoringOptions(batch_size, device, limit, progress),
            slices=slices,
            robustness=robustness,
            calibrate=calibrate,
            detect=detect,
        )
        written = write_eval(result, out if out is not None else resolve_target(target).default_out)
    except user_errors() as error:
        raise fail(error) from error
    count = next(iter(result.protocols.values())).metrics.count
    typer.echo(
        f"{result.model_name} on {count:,} {split} images of {result.dataset} "
        f"(thresholds {result.thresholds.source}; {result.cost.parameters:,} parameters, "
        f"{result.cost.flops:,} FLOPs at {result.cost.input_size[0]}x{result.cost.input_size[1]})"
    )
    typer.echo(f"baselines fitted on {result.baseline_rows}")
    if result.left_out:
        typer.echo(
            f"scored {len(result.attributes) + len(result.kinds)} shared attributes; "
            "not labelled by the dataset: " + ", ".join(result.left_out)
        )
    if result.attributes:
        typer.echo("error (%):")
        typer.echo(format_error_table(result))
    if result.kinds:
        typer.echo("categorical and numeric attributes:")
        typer.echo(format_kind_table(result))
    if result.attributes:
        typer.echo(format_calibration(result))
    for name, fallback in result.whole_image.items():
        typer.echo(
            f"WARNING: protocol {name} scored {fallback:,} whole images (no landmark or box "
            "file): run `faceattr data landmarks ROOT` or pass --detect",
            err=True,
        )
    if result.slices is not None:
        flagged = result.slices.to_dict()["flagged"]
        assert isinstance(flagged, list)
        typer.echo(f"slices: {len(flagged)} accuracy gaps over {result.slices.gap_threshold:.0%}")
        for row in flagged[:5]:
            typer.echo(f"  {row['attribute']} by {row['group']}: gap {row['gap']:+.1%}")
    if result.robustness is not None:
        for kind, curve in result.robustness.items():
            points = ", ".join(
                f"{v:g}: {a:.1%}" for v, a in zip(curve.values, curve.mean_accuracy, strict=True)
            )
            typer.echo(f"robustness ({kind}): {points}")
    for kind, path in written.items():
        typer.echo(f"{kind:<28} {path}")


@app.command("compare")
def compare_command(
    evaluations: list[Path] = typer.Argument(
        ..., help="Run folders (their eval/), evaluation folders or eval.json files."
    ),
    out: Path = typer.Option(Path("compare"), "--out", help="Output folder."),
) -> None:
    """Models x protocols mean error and accuracy, and the per-attribute errors side by side."""
    from faceattr.evaluation.compare import compare_evals, write_comparison

    try:
        comparison = compare_evals(evaluations)
        written = write_comparison(comparison, out)
    except user_errors() as error:
        raise fail(error) from error
    typer.echo(written["compare_md"].read_text())
    for kind, path in written.items():
        typer.echo(f"{kind:<24} {path}")
