import numpy as np
import pytest

from app.core.masks import apply_label_mapping, infer_label_mapping, raw_label_values


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
