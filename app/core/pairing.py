"""Finding datasets on disk: layouts, and pairing images with their masks by file stem."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .imageio import IMAGE_SUFFIXES, TIFF_SUFFIXES, is_image_file, tiff_page_count

IMAGE_DIR_NAMES = ("images", "image", "imgs", "img")
MASK_DIR_NAMES = ("masks", "mask", "labels", "label", "gt", "ground_truth", "annotations")
SPLIT_DIR_NAMES = {"train": "train", "training": "train", "val": "val", "valid": "val",
                   "validation": "val", "test": "test", "testing": "test"}
# Suffixes a mask's stem may carry beyond its image's stem (checked longest first).
MASK_STEM_SUFFIXES = ("_segmentation", "_manual1", "_lesion", "_labels", "_label", "_masks",
                      "_mask", "_seg", "_gt")
# Suffixes an image's stem may carry that its mask's stem does not (DRIVE: 21_training.tif).
IMAGE_STEM_SUFFIXES = ("_training", "_test", "_image", "_img")
STACK_IMAGE_WORDS = ("volume", "image", "images", "raw", "stack")
STACK_LABEL_WORDS = ("labels", "label", "masks", "mask", "gt", "segmentation")

SPLITS = ("train", "val", "test")


class DatasetError(Exception):
    """The dataset as a whole cannot be opened (missing, empty, unrecognised layout)."""


@dataclass(frozen=True)
class Problem:
    """A file that was left out, and why."""

    path: Path
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass(frozen=True)
class PairSpec:
    """One image/mask pair to be read; ``page`` is set for TIFF stacks."""

    name: str
    image_path: Path
    mask_path: Path
    split: str | None = None
    page: int | None = None


def _strip_suffix(stem: str, suffixes: tuple[str, ...]) -> str:
    low = stem.lower()
    for suffix in suffixes:
        for variant in (suffix, suffix.replace("_", "-"), suffix.replace("_", ".")):
            if low.endswith(variant) and len(low) > len(variant):
                return low[: -len(variant)]
    return low


def _find_child(folder: Path, names: tuple[str, ...]) -> Path | None:
    by_lower = {p.name.lower(): p for p in folder.iterdir() if p.is_dir()}
    for name in names:
        if name in by_lower:
            return by_lower[name]
    return None


SYSTEM_FILES = ("thumbs.db", "ehthumbs.db", "desktop.ini", "icon\r")  # written by file managers, not by users


def _listing(folder: Path, problems: list[Problem]) -> list[Path]:
    """Image files in a folder, sorted; other visible files are reported (file managers' own
    files such as ``Thumbs.db`` are passed over like hidden ones)."""
    files = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.name.lower() in SYSTEM_FILES or path.is_dir():
            continue
        if is_image_file(path):
            files.append(path)
        elif path.is_symlink() and not path.exists():
            problems.append(Problem(path, "a broken link: the file it points to does not exist"))
        else:
            problems.append(Problem(path, f"not an image SegStudio reads ({', '.join(IMAGE_SUFFIXES)})"))
    return files


def looks_like_labels(path: Path) -> bool:
    """True when a file's name says it holds labels/masks (e.g. ``train-labels.tif``)."""
    words = set(re.split(r"[^a-z0-9]+", Path(path).stem.lower()))
    return bool(words & set(STACK_LABEL_WORDS))


def order_stack_pair(first: Path, second: Path) -> tuple[Path, Path]:
    """``(image_stack, label_stack)``: the one named like labels is the label stack, else as given."""
    if looks_like_labels(first) and not looks_like_labels(second):
        return second, first
    return first, second


def pair_folder(image_dir: Path, mask_dir: Path, split: str | None, problems: list[Problem]) -> list[PairSpec]:
    """Pair ``image_dir``'s images with ``mask_dir``'s masks by stem, reporting the leftovers."""
    if image_dir.resolve() == mask_dir.resolve():
        raise DatasetError(f"the images and the masks are the same folder ({image_dir}); each image would "
                           "be its own mask")
    images = _listing(image_dir, problems)
    masks = _listing(mask_dir, problems)
    if not images:
        raise DatasetError(f"{image_dir} contains no images")

    by_stem: dict[str, Path] = {}
    by_alt_stem: dict[str, Path] = {}
    for path in images:
        stem = path.stem.lower()
        if stem in by_stem:
            problems.append(Problem(path, f"another image has the same name ({by_stem[stem].name}); left out"))
            continue
        by_stem[stem] = path
        by_alt_stem.setdefault(_strip_suffix(stem, IMAGE_STEM_SUFFIXES), path)

    mask_for: dict[Path, Path] = {}
    for path in masks:
        key = path.stem.lower()
        image = by_stem.get(key)
        if image is None:
            key = _strip_suffix(key, MASK_STEM_SUFFIXES)
            image = by_stem.get(key) or by_alt_stem.get(key)
        if image is None:
            problems.append(Problem(path, "mask without a matching image; left out"))
        elif image in mask_for:
            problems.append(Problem(path, f"a second mask for {image.name} (first: {mask_for[image].name}); left out"))
        else:
            mask_for[image] = path

    pairs = []
    for image in by_stem.values():
        if image in mask_for:
            pairs.append(PairSpec(image.stem, image, mask_for[image], split))
        else:
            problems.append(Problem(image, f"image without a mask in {mask_dir}; left out"))
    return pairs


def _pair_image_mask_dirs(folder: Path, split: str | None, problems: list[Problem]) -> list[PairSpec] | None:
    image_dir = _find_child(folder, IMAGE_DIR_NAMES)
    mask_dir = _find_child(folder, MASK_DIR_NAMES)
    if image_dir is None or mask_dir is None:
        return None
    return pair_folder(image_dir, mask_dir, split, problems)


def _find_stack_pair(folder: Path) -> tuple[Path, Path] | None:
    tiffs = [p for p in sorted(folder.iterdir()) if p.is_file() and p.suffix.lower() in TIFF_SUFFIXES
             and not p.name.startswith(".")]
    if len(tiffs) < 2:
        return None
    words = lambda p: set(re.split(r"[^a-z0-9]+", p.stem.lower()))  # noqa: E731
    labels = [p for p in tiffs if words(p) & set(STACK_LABEL_WORDS)]
    images = [p for p in tiffs if p not in labels and (words(p) & set(STACK_IMAGE_WORDS) or len(tiffs) == 2)]
    if len(labels) == 1 and len(images) == 1:
        return images[0], labels[0]
    return None


def stack_pairs(image_stack: Path, label_stack: Path, problems: list[Problem]) -> list[PairSpec]:
    """One pair per page of an image stack and a label stack of the same length."""
    for path in (image_stack, label_stack):
        if not path.is_file():
            raise DatasetError(f"TIFF stack not found: {path}")
    n_images, n_labels = tiff_page_count(image_stack), tiff_page_count(label_stack)
    if n_images == 0:
        raise DatasetError(f"{image_stack}: not a readable TIFF stack")
    if n_labels == 0:
        raise DatasetError(f"{label_stack}: not a readable TIFF stack")
    if n_images != n_labels:
        problems.append(Problem(label_stack, f"has {n_labels} pages but {image_stack.name} has {n_images}; "
                                             f"pages beyond {min(n_images, n_labels)} left out"))
    width = len(str(max(n_images, n_labels) - 1))
    return [PairSpec(f"{image_stack.stem}_{i:0{width}d}", image_stack, label_stack, None, i)
            for i in range(min(n_images, n_labels))]


def discover(source: str | Path | tuple, problems: list[Problem]) -> tuple[str, Path, list[PairSpec]]:
    """Find the dataset at ``source``; returns ``(layout, root, pairs)``.

    ``source`` is a folder (``images/`` + ``masks/``; ``train/``, ``val/`` [, ``test/``] each
    laid out so; or an image TIFF stack beside its label stack) or a pair of stack paths.
    """
    if isinstance(source, (tuple, list)):
        if len(source) != 2:
            raise DatasetError("a TIFF stack dataset needs two paths: the image stack and the label stack")
        image_stack, label_stack = order_stack_pair(*(Path(p) for p in source))
        if image_stack.exists() and image_stack.resolve() == label_stack.resolve():
            raise DatasetError(f"the image stack and the label stack are the same file ({image_stack}); each "
                               "image would be its own mask")
        return "tiff-stack", image_stack.parent, stack_pairs(image_stack, label_stack, problems)

    root = Path(source)
    if not root.exists():
        raise DatasetError(f"dataset folder does not exist: {root}")
    if root.is_file():
        raise DatasetError(f"{root} is a file; give its folder, or the image stack and the label stack together")
    if not any(p for p in root.iterdir() if not p.name.startswith(".")):
        raise DatasetError(f"dataset folder is empty: {root}")

    split_dirs = {}
    for child in sorted(root.iterdir()):
        split = SPLIT_DIR_NAMES.get(child.name.lower())
        if child.is_dir() and split and split not in split_dirs:
            split_dirs[split] = child
    if "train" in split_dirs:
        pairs: list[PairSpec] = []
        for split in SPLITS:
            if split in split_dirs:
                images = _find_child(split_dirs[split], IMAGE_DIR_NAMES)
                if split != "train" and images is not None and not any(is_image_file(p) for p in images.iterdir()):
                    problems.append(Problem(split_dirs[split], f"the {split} folder has no images; split left empty"))
                    continue
                found = _pair_image_mask_dirs(split_dirs[split], split, problems)
                if found is None:
                    raise DatasetError(f"{split_dirs[split]} needs an images/ and a masks/ folder")
                pairs.extend(found)
        return "split-folders", root, pairs

    pairs_in_root = _pair_image_mask_dirs(root, None, problems)
    if pairs_in_root is not None:
        return "folder", root, pairs_in_root

    stack = _find_stack_pair(root)
    if stack is not None:
        return "tiff-stack", root, stack_pairs(*stack, problems)

    raise DatasetError(
        f"no dataset found in {root}: expected images/ and masks/ folders, train/ and val/ folders "
        "laid out that way, or an image TIFF stack beside its label stack (e.g. train-volume.tif, "
        "train-labels.tif)"
    )
