"""``faceattr demo``: the whole pipeline, end to end, on the embedded synthetic dataset."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from faceattr.cli import app


def _step(title: str) -> float:
    typer.secho(f"\n== {title}", bold=True)
    return time.perf_counter()


def _done(start: float, *outputs: tuple[str, Path]) -> None:
    for what, path in outputs:
        typer.echo(f"   {what:<22} {path}")
    typer.echo(f"   ({time.perf_counter() - start:.1f} s)")


@app.command("demo")
def demo(
    out: Path = typer.Option(Path("demo-out"), "--out", help="Folder for everything it writes."),
    count: int = typer.Option(2000, "--count", min=60, help="Synthetic faces to generate."),
    seed: int = typer.Option(0, "--seed", help="Seed for data, augmentation and training."),
) -> None:
    """Generate a synthetic CelebA folder, check it, chart its statistics and pack its images."""
    from faceattr.data.cache_prepare import prepare_cache
    from faceattr.data.celeba import check_celeba, load_celeba
    from faceattr.data.stats import dataset_stats, write_stats
    from faceattr.data.synth import RENDERED_ATTRIBUTES, generate_dataset

    data_root = out / "data"
    start = _step(f"1. Synthetic CelebA: {count} faces (faceattr data synth)")
    summary = generate_dataset(data_root, count, seed=seed)
    typer.echo(
        f"   {summary.identities} identities, splits {summary.split_counts}, "
        f"{len(RENDERED_ATTRIBUTES)} attributes drawn, label noise {summary.label_noise:.1%}"
    )
    _done(start, ("dataset", data_root))

    start = _step("2. Validate it (faceattr data check)")
    report = check_celeba(data_root)
    typer.echo("\n".join("   " + line for line in report.format().splitlines()))
    if not report.ok:
        raise typer.Exit(1)
    _done(start)

    start = _step("3. Statistics and baselines (faceattr data stats)")
    data = load_celeba(data_root)
    stats = dataset_stats(data.labels, data.partition, data.attribute_names)
    written = write_stats(stats, out / "stats")
    test = stats.baselines.get("test")
    if test is not None:
        typer.echo(f"   majority baseline on test: {test.mean_majority_accuracy:.2%} mean accuracy")
    _done(start, *written.items())

    start = _step("4. Packed image cache (faceattr data prepare)")
    cache = prepare_cache(data_root, out / "cache", size=160, progress=True)
    typer.echo(f"   {cache.written} crops at {cache.images_per_second:.0f} images/s")
    _done(start, ("cache", out / "cache"))
    typer.secho(f"\nDemo finished: everything is under {out}", bold=True)
