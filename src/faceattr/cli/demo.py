"""``faceattr demo``: the whole pipeline, end to end, on the embedded synthetic dataset."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from faceattr.cli import app

if TYPE_CHECKING:
    from faceattr.data.baselines import BaselineScores

CACHE_SIZE = 144
"""Side of the demo's cached loose crops: its FaceNet's type A region keeps about 36 px."""
DEMO_RECIPES = (
    ("demo_facenet", "seed 000's FaceNet, 36x36 grey"),
    ("demo_mobilenet", "MobileNetV3-Small, 64x64, 40 attributes"),
)
DEMO_QUERIES = ("Eyeglasses and Wearing_Hat", "Male and not Smiling and not No_Beard")
"""The searches the demo runs over its index of the synthetic test faces."""


def _step(title: str) -> float:
    typer.secho(f"\n== {title}", bold=True)
    return time.perf_counter()


def _done(start: float, *outputs: tuple[str, Path]) -> None:
    for what, path in outputs:
        typer.echo(f"   {what:<22} {path}")
    typer.echo(f"   ({time.perf_counter() - start:.1f} s)")


def _baseline(scores: BaselineScores | None, names: list[str]) -> float:
    """Mean majority-baseline accuracy over ``names`` (NaN without a validation split)."""
    import numpy as np

    if scores is None or not names:
        return float("nan")
    return float(np.mean([scores.majority_accuracy[scores.names.index(n)] for n in names]))


@app.command("demo")
def demo(
    out: Path = typer.Option(Path("demo-out"), "--out", help="Folder for everything it writes."),
    count: int = typer.Option(2000, "--count", min=60, help="Synthetic faces to generate."),
    seed: int = typer.Option(0, "--seed", help="Seed for data, augmentation and training."),
) -> None:
    """Generate a synthetic CelebA folder, check it, chart its statistics, pack its images,
    train two small models on it (seed 000's FaceNet and a MobileNetV3), evaluate the second on
    protocols A and D with a report, explain one of its faces, index the test faces and search
    them, and predict on a real photo with the model shipped in the package."""
    from faceattr.data.cache_prepare import prepare_cache
    from faceattr.data.loaders import check_dataset, load_dataset
    from faceattr.data.stats import dataset_stats, write_stats
    from faceattr.data.synth import RENDERED_ATTRIBUTES, generate_dataset
    from faceattr.training.config import load_config
    from faceattr.training.trainer import train

    data_root = out / "data"
    start = _step(f"1. Synthetic CelebA: {count} faces (faceattr data synth)")
    summary = generate_dataset(data_root, count, seed=seed)
    typer.echo(
        f"   {summary.identities} identities, splits {summary.split_counts}, "
        f"{len(RENDERED_ATTRIBUTES)} attributes drawn, label noise {summary.label_noise:.1%}"
    )
    _done(start, ("dataset", data_root))

    start = _step("2. Validate it (faceattr data check)")
    report = check_dataset(data_root)
    typer.echo("\n".join("   " + line for line in report.format_text().splitlines()))
    if not report.ok:
        raise typer.Exit(1)
    _done(start)

    start = _step("3. Statistics and baselines (faceattr data stats)")
    data = load_dataset(data_root)
    stats = dataset_stats(data.labels, data.partition, data.attribute_names)
    written = write_stats(stats, out / "stats")
    test = stats.baselines.get("test")
    if test is not None:
        typer.echo(f"   majority baseline on test: {test.mean_majority_accuracy:.2%} mean accuracy")
    _done(start, *written.items())

    cache_dir = out / "cache"
    start = _step("4. Packed image cache (faceattr data prepare)")
    cache = prepare_cache(data_root, cache_dir, size=CACHE_SIZE, progress=True)
    typer.echo(f"   {cache.written} crops at {cache.images_per_second:.0f} images/s")
    _done(start, ("cache", cache_dir))

    runs = []
    for number, (recipe, what) in enumerate(DEMO_RECIPES, start=5):
        start = _step(f"{number}. Train {what} (faceattr train {recipe})")
        config = load_config(
            recipe,
            [
                f"data.root={data_root}",
                f"data.cache={cache_dir}",
                f"data.cache_size={CACHE_SIZE}",
                f"trainer.output_dir={out / 'runs'}",
                f"trainer.seed={seed}",
            ],
        )
        result = train(config)
        names = [key.split("/")[-1] for key in result.metrics if key.startswith("val/acc/")]
        typer.echo(
            f"   {result.epochs} epochs; validation mean accuracy over {len(names)} attributes "
            f"{result.metrics['val/mean_accuracy']:.2%} (majority baseline "
            f"{_baseline(stats.baselines.get('val'), names):.2%})"
        )
        _done(start, ("run", result.run_dir), ("best model", result.best))
        runs.append(result.run_dir)
    model_run = runs[-1]
    _evaluate_and_report(model_run, out, data_root)
    test_images = [data.image_path(int(i)) for i in data.split_indices("test")]
    _explain_face(model_run, out, test_images[0])
    _index_and_search(model_run, out, test_images)
    _predict_photo(out)
    typer.secho(f"\nDemo finished: everything is under {out}", bold=True)


def _evaluate_and_report(run: Path, out: Path, data_root: Path) -> None:
    """Steps 7-8: ``faceattr evaluate`` on protocols A and D, then ``faceattr report``."""
    import numpy as np

    from faceattr.evaluation.evaluate import ScoringOptions, evaluate_model, write_eval
    from faceattr.report.writer import write_report

    start = _step("7. Evaluate on protocols A and D (faceattr evaluate)")
    result = evaluate_model(
        run, root=data_root, protocols="A,D", options=ScoringOptions(progress=False)
    )
    eval_dir = run / "eval"
    write_eval(result, eval_dir)
    baseline = float(np.mean(result.baselines.majority_accuracy))
    for name, protocol in result.protocols.items():
        typer.echo(
            f"   protocol {name}: mean accuracy {protocol.metrics.mean()['accuracy']:.2%} "
            f"(majority baseline {baseline:.2%}), thresholds {result.thresholds.source}"
        )
    _done(start, ("evaluation", eval_dir))

    start = _step("8. Report (faceattr report)")
    files = write_report([eval_dir], out / "report", progress=False)
    _done(start, ("report", files.html), ("markdown", files.markdown))


def _explain_face(run: Path, out: Path, image: Path) -> None:
    """Step 9: ``faceattr explain`` of one test face: feature maps and Grad-CAM per attribute."""
    from faceattr.explain import explain_image
    from faceattr.inference.predictor import Predictor

    start = _step(f"9. Explain one test face, {image.name} (faceattr explain)")
    predictor = Predictor.from_checkpoint(run, device="cpu")
    explanation = explain_image(predictor, image, ["Eyeglasses"], out / "explain", progress=False)
    for face in explanation.faces:
        typer.echo(
            f"   face {face.number}: {len(face.stages)} feature-map stages, saliency for "
            f"{', '.join(s.name for s in face.saliency)}"
        )
    _done(start, ("explanation", explanation.page))


def _index_and_search(run: Path, out: Path, images: list[Path]) -> None:
    """Step 10: ``faceattr index`` of the test faces, then two ``faceattr search`` queries."""
    from faceattr.inference.predictor import Predictor
    from faceattr.retrieval.indexer import index_paths
    from faceattr.retrieval.store import IndexStore

    start = _step(f"10. Index {len(images)} test faces and search them (faceattr index, search)")
    db = out / "faces.db"
    predictor = Predictor.from_checkpoint(run, device="cpu")
    store = IndexStore.open(str(db), create=True)
    try:
        summary = index_paths(store, predictor, images, progress=False, workers=0)
        typer.echo(
            f"   {summary.added} files indexed, {summary.faces} faces, {summary.failed} failed"
        )
        for query in DEMO_QUERIES:
            hits = store.search(query, limit=3)
            found = ", ".join(f"{Path(h.path).name} ({h.score:.2f})" for h in hits) or "none"
            typer.echo(f'   search "{query}": {found}')
    finally:
        store.close()
    _done(start, ("index", db))


def _predict_photo(out: Path) -> None:
    """Step 11: ``faceattr predict`` with the shipped model on a real photo that scikit-image
    ships (the astronaut)."""
    from PIL import Image
    from skimage import data as photos

    from faceattr.inference.predictor import Predictor
    from faceattr.shipped import SHIPPED_MODEL

    start = _step("11. Predict on a real photo with the shipped model (faceattr predict PHOTO)")
    photo = out / "astronaut.png"
    Image.fromarray(photos.astronaut()).save(photo)
    predictor = Predictor.from_checkpoint(device="cpu")
    faces = predictor.predict(photo)
    for face in faces:
        x, y, w, h = face.box
        scores = zip(face.attributes, face.probabilities, face.decisions, strict=True)
        present = [f"{name} {p:.0%}" for name, p, yes in scores if yes]
        typer.echo(f"   face at ({x:.0f}, {y:.0f}) {w:.0f}x{h:.0f}: {', '.join(present) or '-'}")
    typer.echo(
        f"   {len(faces)} face(s) by {predictor.description.model_name}, trained on real CelebA "
        f"faces (faceattr/weights/{SHIPPED_MODEL}/MODEL_CARD.md)"
    )
    _done(start, ("photo", photo))
