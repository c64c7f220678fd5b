"""Building a review's cases: from folders of images and predicted masks, or by predicting a
folder of images with a run's checkpoint (the masks then live in the review folder)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..batch_predict import MANIFEST_NAME  # written by `segstudio predict` beside its masks
from ..imageio import ImageReadError, is_image_file, read_image, write_image
from ..pairing import DatasetError, PairSpec, Problem, pair_folder
from .case_data import file_digest, mask_stats, read_mask_checked, read_probability_checked
from .record import ReviewCase, ReviewError

PREDICTIONS_DIR = "predictions"
PROBABILITIES_DIR = "probabilities"
SIDE_FILE_SUFFIXES = ("_watershed", "_overlay", "_probability")  # other outputs of `segstudio predict`

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


def _manifest(masks_dir: Path) -> dict:
    """The predictions.json ``segstudio predict`` wrote beside its masks ({} without a readable one)."""
    try:
        data = json.loads((Path(masks_dir) / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def read_manifest(masks_dir: Path) -> dict:
    """The model and checkpoint recorded by ``segstudio predict`` beside its masks, if any."""
    data = _manifest(masks_dir)
    info = {k: str(data[k]) for k in ("checkpoint", "model") if data.get(k)}
    if isinstance(data.get("postprocess"), dict):
        info["postprocess"] = data["postprocess"]
    return info


def _why(problems: list[Problem], shown: int = 2) -> str:
    """The first reasons files were left out, for a message that nothing could be used."""
    if not problems:
        return ""
    first = "; ".join(f"{p.path.parent.name}/{p.path.name}: {p.reason.removesuffix('; case left out')}"
                      for p in problems[:shown])
    return f" ({first}{f'; and {len(problems) - shown} more' if len(problems) > shown else ''})"


def cases_from_folders(images_dir: Path, masks_dir: Path, problems: list[Problem],
                       progress: Progress | None = None, should_stop: ShouldStop = _none) -> list[ReviewCase]:
    """Pair images with predicted masks by stem and check each pair can be read and matches in
    size; pairs that fail are reported in ``problems`` and left out."""
    images_dir, masks_dir = Path(images_dir), Path(masks_dir)
    for folder in (images_dir, masks_dir):
        if not folder.is_dir():
            raise ReviewError(f"folder not found: {folder}")
    if images_dir.resolve() == masks_dir.resolve():  # every image would be its own mask
        raise ReviewError(f"the images and the masks are the same folder ({images_dir}); choose the folder "
                          "with the predicted masks")
    manifest = _manifest(masks_dir)
    outputs = manifest.get("outputs")
    if isinstance(outputs, list):  # a `segstudio predict` folder: its record says which mask is whose
        recorded = _other_images_folder(manifest, images_dir)
        pairs, maps = _pairs_from_outputs(images_dir, masks_dir, outputs, recorded, problems)
    else:
        found: list[Problem] = []
        try:
            pairs, maps = pair_folder(images_dir, masks_dir, None, found), {}
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
            if pair.mask_path in maps:
                _add_probability(case, maps[pair.mask_path], image.shape[:2], problems)
            cases.append(case)
        if progress:
            progress(i + 1, len(pairs))
    if not cases:
        raise ReviewError(f"no readable image and mask pairs in {images_dir} and {masks_dir}{_why(problems)}")
    return cases


def _other_images_folder(manifest: dict, images_dir: Path) -> Path | None:
    """The images folder ``segstudio predict`` recorded in ``manifest`` when it is another folder
    that still exists (its files are then compared with the chosen ones), else None."""
    recorded = manifest.get("images")
    folder = Path(recorded) if isinstance(recorded, str) and recorded else None
    try:
        return folder if folder and folder.is_dir() and folder.resolve() != images_dir.resolve() else None
    except OSError:
        return None


def _pairs_from_outputs(images_dir: Path, masks_dir: Path, outputs: list, recorded: Path | None,
                        problems: list[Problem]) -> tuple[list[PairSpec], dict[Path, Path]]:
    """The image/mask pairs (and each mask's probability map) as ``segstudio predict`` recorded
    them, so no file name can pair a mask or map with another image; leftovers are problems. An
    image whose namesake in the recorded images folder differs is not the one predicted: left out."""
    import filecmp

    images = {p.name: p for p in sorted(images_dir.iterdir()) if p.is_file() and is_image_file(p)}
    if not images:
        raise ReviewError(f"{images_dir} contains no images")
    pairs, maps, listed, used = [], {}, {MANIFEST_NAME}, set()
    for entry in outputs:
        names = [entry.get(key) for key in ("image", "mask", "probability")] if isinstance(entry, dict) else []
        if len(names) != 3 or not all(isinstance(n, str) and n == Path(n).name for n in names[:2]) \
                or not (names[2] is None or isinstance(names[2], str) and names[2] == Path(names[2]).name):
            problems.append(Problem(masks_dir / MANIFEST_NAME, f"an output entry is damaged ({str(entry)[:80]}); "
                                                               "skipped"))
            continue
        image_name, mask_name, map_name = names
        listed.update(n for n in (mask_name, map_name) if n)
        mask = masks_dir / mask_name
        if image_name not in images:
            problems.append(Problem(mask, f"its image {image_name} is not in {images_dir}; left out"))
        elif not mask.is_file():
            problems.append(Problem(images[image_name], f"its predicted mask {mask_name} is missing from "
                                                        f"{masks_dir}; left out"))
        elif recorded is not None and (recorded / image_name).is_file() \
                and not filecmp.cmp(recorded / image_name, images[image_name], shallow=False):
            used.add(image_name)
            problems.append(Problem(images[image_name], f"not the image {mask_name} was predicted from (that is "
                                                        f"{recorded / image_name}, per {MANIFEST_NAME}); left out"))
        elif image_name not in used:
            used.add(image_name)
            pairs.append(PairSpec(mask.stem, images[image_name], mask))
            if map_name:
                maps[mask] = masks_dir / map_name
    problems.extend(Problem(path, f"image without a mask in {masks_dir}; left out")
                    for name, path in images.items() if name not in used)
    for path in sorted(masks_dir.iterdir()):  # a file put there later: not the model's, so not reviewed
        if path.is_file() and is_image_file(path) and path.name not in listed \
                and not path.stem.lower().endswith(SIDE_FILE_SUFFIXES[:2]):
            problems.append(Problem(path, f"not among the masks {MANIFEST_NAME} lists; left out"))
    return pairs, maps


def _add_probability(case: ReviewCase, path: Path, shape: tuple[int, int], problems: list[Problem]) -> None:
    """Give ``case`` the probability map ``segstudio predict --probabilities`` wrote for its image
    (recorded in predictions.json), so its clean-up is the one ``--watershed`` made; a map that
    cannot be used is a problem, and the clean-up then starts from the mask."""
    if not path.is_file():
        problems.append(Problem(path, f"probability map missing; the clean-up of {case.name} starts from its mask"))
        return
    try:
        read_probability_checked(path, shape)
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
        raise ReviewError(f"none of the images in {images_dir} could be predicted{_why(problems)}")
    info = {"checkpoint": str(Path(checkpoint).resolve()), "model": predictor.config.model.name,
            "experiment": predictor.config.name, "postprocess": predictor.watershed_params.to_dict()}
    return cases, info
