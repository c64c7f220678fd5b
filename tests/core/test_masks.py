import numpy as np
import pytest

from app.core.masks import apply_label_mapping, infer_label_mapping, raw_label_values

from .helpers import save


def values(*sets):
    return [np.array(s) for s in sets]


@pytest.mark.parametrize("sets, expected", [
    ([(0, 255), (0,)], {0: 0, 255: 1}),
    ([(0, 1), (1,)], {0: 0, 1: 1}),
    ([(3, 7)], {3: 0, 7: 1}),
    ([(255,)], {255: 1}),
    ([(0,)], {0: 0}),
])
def test_binary_any_two_values(sets, expected):
    mapping = infer_label_mapping(values(*sets))
    assert mapping.mode == "binary" and mapping.num_classes == 2
    assert mapping.value_to_class == expected


def test_mixed_binary_encodings():
    mapping = infer_label_mapping(values((0, 1), (0, 255)))
    assert mapping.mode == "binary" and mapping.note
    mixed = apply_label_mapping(np.array([[0, 1, 255]], np.uint8), mapping)
    assert mixed.tolist() == [[0, 1, 1]]


def test_indexed_and_grey_coded():
    assert infer_label_mapping(values((0, 1, 2), (0, 4))).num_classes == 5
    grey = infer_label_mapping(values((0, 128, 255)))
    assert grey.mode == "grey-coded" and grey.num_classes == 3
    assert apply_label_mapping(np.array([[0, 128, 255]], np.uint8), grey).tolist() == [[0, 1, 2]]


def test_too_many_values_fall_back_to_binary_with_note():
    mapping = infer_label_mapping([np.arange(40), np.arange(100, 140)], max_classes=64)
    assert mapping.mode == "binary" and "80 distinct values" in mapping.note


def test_forced_modes_and_unknown_mode():
    assert infer_label_mapping(values((0, 1, 2)), mode="binary").value_to_class == {0: 0, 1: 1, 2: 1}
    assert infer_label_mapping(values((0, 200)), mode="indexed").num_classes == 201
    with pytest.raises(ValueError, match="valid: auto, binary, indexed"):
        infer_label_mapping(values((0, 1)), mode="fancy")


def test_colour_masks():
    gray_as_rgb = np.dstack([np.array([[0, 255]], np.uint8)] * 3)
    assert raw_label_values(gray_as_rgb).tolist() == [[0, 255]]
    colours = np.array([[[0, 0, 0], [255, 0, 0], [0, 255, 0]]], np.uint8)
    raw = raw_label_values(colours)
    mapping = infer_label_mapping([np.unique(raw)])
    assert mapping.num_classes == 3
    labels = apply_label_mapping(raw, mapping)
    assert labels[0, 0] == 0 and len(set(labels.ravel().tolist())) == 3


def test_fractional_float_mask_rejected():
    with pytest.raises(ValueError, match="whole numbers"):
        raw_label_values(np.array([[0.5, 1.0]], np.float32))


def _disc(size: int = 96, blur: int = 5) -> np.ndarray:
    import cv2

    yy, xx = np.mgrid[:size, :size]
    crisp = (((yy - size / 2) ** 2 + (xx - size / 2) ** 2) < (size / 3) ** 2).astype(np.uint8) * 255
    return cv2.GaussianBlur(crisp, (blur, blur), 0) if blur else crisp


def test_blurred_binary_masks_are_read_as_binary_with_a_note(tmp_path):
    """Anti-aliased 0/255 masks became dozens of grey-coded classes (a 35-class model) silently."""
    from app.core.dataset import load_dataset
    from app.core.masks import looks_soft, unique_values

    soft = _disc()
    assert len(unique_values(soft)) >= 10 and looks_soft(soft, unique_values(soft))
    for i, mask in enumerate((soft, _disc(blur=0), np.flipud(soft))):
        save(tmp_path / "images" / f"{i}.png", np.full(mask.shape, 100, np.uint8))
        save(tmp_path / "masks" / f"{i}.png", mask)
    ds = load_dataset(tmp_path)
    assert ds.labels.mode == "binary" and ds.num_classes == 2
    assert "anti-aliased or JPEG-compressed" in ds.problems[0].reason and len(ds.samples) == 3
    sample = next(s for s in ds.samples if s.name == "0")
    assert np.array_equal(sample.mask, (soft > 127.5).astype(np.uint8))


def test_a_grey_coded_label_map_with_many_classes_is_not_taken_for_a_blurred_mask():
    from app.core.masks import looks_soft, unique_values

    labels = np.zeros((100, 100), np.uint8)
    for k, value in enumerate(range(20, 240, 20)):  # 11 classes, each a 8×100 stripe (regions, not edges)
        labels[k * 8:(k + 1) * 8] = value
    labels[-12:] = 255
    values = unique_values(labels)
    assert not looks_soft(labels, values)
    mapping = infer_label_mapping([values], soft=[looks_soft(labels, values)])
    assert mapping.mode == "grey-coded" and mapping.num_classes == len(values)
