"""Building a review's cases: from folders of images and predicted masks, or by predicting a
folder of images with a run's checkpoint (the masks then live in the review folder)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..batch_predict import MANIFEST_NAME  # written by `segstudio predict` beside its masks
from ..imageio import ImageReadError, is_image_file, read_image, write_image
from ..pairing import DatasetError, Problem, pair_folder
from .case_data import file_digest, mask_stats, read_mask_checked
from .record import ReviewCase, ReviewError

PREDICTIONS_DIR = "predictions"
PROBABILITIES_DIR = "probabilities"
SIDE_FILE_SUFFIXES = ("_watershed", "_overlay", "_probability")  # other outputs of `segstudio predict`
PROBABILITY_SUFFIX = "_probability.png"  # `segstudio predict --probabilities`: the map the clean-up starts from

Progress = Callable[[int, int], None]
ShouldStop = Callable[[], bool]


def _none() -> bool:
    return False


def check_review_folder(review_dir: Path, sources: list[Path]) -> None:
    """A review folder is new or empty, and never inside (or the same as) a source folder."""
    review_dir = Path(review_dir).resolve()
    for source in sources:
        source = Path(source).resolve()
        if review_dir == source or source in review_dir.parents:
            raise ReviewError(f"the review folder {review_dir} is inside the source folder {source}; "
                              "SegStudio never writes there. Choose a folder elsewhere.")
    if review_dir.exists() and (not review_dir.is_dir() or any(review_dir.iterdir())):
        raise ReviewError(f"{review_dir} is not an empty folder; choose a new or empty folder for the review")


def read_manifest(masks_dir: Path) -> dict:
    """The model and checkpoint recorded by ``segstudio predict`` beside its masks, if any."""
    try:
        data = json.loads((Path(masks_dir) / MANIFEST_NAME).read_text(encoding="utf-8"))
        info = {k: str(data[k]) for k in ("checkpoint", "model") if data.get(k)}
        if isinstance(data.get("postprocess"), dict):
            info["postprocess"] = data["postprocess"]
        return info
    except (OSError, ValueError, TypeError, AttributeError):
        return {}


def cases_from_folders(images_dir: Path, masks_dir: Path, problems: list[Problem],
                       progress: Progress | None = None, should_stop: ShouldStop = _none) -> list[ReviewCase]:
    """Pair images with predicted masks by stem and check each pair can be read and matches in
    size; pairs that fail are reported in ``problems`` and left out."""
    images_dir, masks_dir = Path(images_dir), Path(masks_dir)
    for folder in (images_dir, masks_dir):
        if not folder.is_dir():
            raise ReviewError(f"folder not found: {folder}")
    found: list[Problem] = []
    try:
        pairs = pair_folder(images_dir, masks_dir, None, found)
    except DatasetError as exc:
        raise ReviewError(str(exc)) from None
    # `segstudio predict` writes NAME_watershed.png and NAME_overlay.png beside NAME.png: not problems.
    def side_file(problem: Problem) -> bool:
        return problem.path.name == MANIFEST_NAME or (
            problem.path.parent == masks_dir and problem.path.stem.lower().endswith(SIDE_FILE_SUFFIXES))

    problems.extend(p for p in found if not side_file(p))
    cases = []
    for i, pair in enumerate(pairs):
        if should_stop():
            raise ReviewError("cancelled")
        try:
            image = read_image(pair.image_path)
            gray = read_mask_checked(pair.mask_path, image.shape[:2])
        except ImageReadError as exc:
            problems.append(Problem(exc.path, f"{exc.reason}; case left out"))
        else:
            area, objects = mask_stats(gray > 127)
            case = ReviewCase(pair.name, str(pair.image_path.resolve()), str(pair.mask_path.resolve()),
                              area=area, objects=objects, mask_digest=file_digest(pair.mask_path))
            _add_probability(case, pair.mask_path, image.shape[:2], problems)
            cases.append(case)
        if progress:
            progress(i + 1, len(pairs))
    if not cases:
        raise ReviewError(f"no readable image and mask pairs in {images_dir} and {masks_dir}")
    return cases


def _add_probability(case: ReviewCase, mask_path: Path, shape: tuple[int, int], problems: list[Problem]) -> None:
    """Give ``case`` the probability map ``segstudio predict --probabilities`` wrote beside its
    mask (NAME_probability.png), so its clean-up is the one ``--watershed`` made; a map that
    cannot be used is a problem, and the clean-up then starts from the mask."""
    path = mask_path.with_name(mask_path.stem + PROBABILITY_SUFFIX)
    if not path.is_file():
        return
    try:
        read_mask_checked(path, shape)
    except ImageReadError as exc:
        problems.append(Problem(exc.path, f"{exc.reason}; the clean-up of {case.name} starts from its mask"))
        return
    case.probability, case.probability_digest = str(path.resolve()), file_digest(path)


def cases_from_checkpoint(checkpoint: Path, images_dir: Path, review_dir: Path, problems: list[Problem],
                          device: str = "auto", progress: Progress | None = None,
                          should_stop: ShouldStop = _none) -> tuple[list[ReviewCase], dict]:
    """Predict every image of ``images_dir`` with ``checkpoint``; the masks (and, for binary
    models, the foreground probabilities) are written into the review folder."""
    from ..predictor import Predictor  # torch is loaded only here

    images_dir = Path(images_dir)
    if not images_dir.is_dir():
        raise ReviewError(f"folder not found: {images_dir}")
    paths = sorted(p for p in images_dir.iterdir() if is_image_file(p))
    if not paths:
        raise ReviewError(f"no images in {images_dir}")
    predictor = Predictor.from_checkpoint(checkpoint, device)
    (review_dir / PREDICTIONS_DIR).mkdir(parents=True, exist_ok=True)
    (review_dir / PROBABILITIES_DIR).mkdir(exist_ok=True)
    stems = [p.stem for p in paths]
    cases = []
    for i, path in enumerate(paths):
        if should_stop():
            raise ReviewError("cancelled")
        name = path.stem if stems.count(path.stem) == 1 else path.name
        try:
            image = read_image(path)
            prediction = predictor.predict(image, should_stop=should_stop)
        except (ImageReadError, ValueError) as exc:
            problems.append(Problem(path, f"{getattr(exc, 'reason', exc)}; case left out"))
            continue
        mask = (prediction.labels > 0).astype(np.uint8)
        mask_rel = f"{PREDICTIONS_DIR}/{name}.png"
        write_image(review_dir / mask_rel, mask * np.uint8(255))
        prob_rel = ""
        if prediction.probabilities.shape[0] == 2:
            prob_rel = f"{PROBABILITIES_DIR}/{name}.png"
            write_image(review_dir / prob_rel, np.clip(prediction.probabilities[1] * 255 + 0.5, 0, 255).astype(np.uint8))
        area, objects = mask_stats(mask)
        cases.append(ReviewCase(name, str(path.resolve()), mask_rel, prob_rel, area=area, objects=objects))
        if progress:
            progress(i + 1, len(paths))
    if not cases:
        raise ReviewError(f"none of the images in {images_dir} could be predicted")
    info = {"checkpoint": str(Path(checkpoint).resolve()), "model": predictor.config.model.name,
            "experiment": predictor.config.name, "postprocess": predictor.watershed_params.to_dict()}
    return cases, info
