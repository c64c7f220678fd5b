import numpy as np
import pytest

from app.core.metrics import (ERROR_COLOURS, FALSE_NEGATIVE, FALSE_POSITIVE, TRUE_NEGATIVE, TRUE_POSITIVE,
                              ScoreAccumulator, adapted_rand_error, confusion_matrix, error_map,
                              instance_labels, segmentation_scores, variation_of_information)


def test_binary_scores_by_hand():
    target = np.array([[1, 1, 0, 0]])
    pred = np.array([[1, 0, 1, 0]])
    s = segmentation_scores(pred, target)
    assert s.pixel_accuracy == 0.5
    assert s.iou == pytest.approx(1 / 3)  # tp 1, fp 1, fn 1
    assert s.dice == pytest.approx(0.5)
    assert s.precision == 0.5 and s.recall == 0.5
    assert s.mean_iou == pytest.approx((1 / 3 + 1 / 3) / 2)


def test_empty_prediction_of_empty_truth_is_perfect():
    zeros = np.zeros((4, 4), int)
    s = segmentation_scores(zeros, zeros)
    assert s.iou == 1.0 and s.dice == 1.0 and s.pixel_accuracy == 1.0


def test_multiclass_confusion_and_foreground_average():
    target = np.array([0, 1, 2, 2])
    pred = np.array([0, 2, 2, 2])
    cm = confusion_matrix(pred, target, 3)
    assert cm.tolist() == [[1, 0, 0], [0, 0, 1], [0, 0, 2]]
    s = segmentation_scores(pred, target, 3)
    assert s.class_iou == pytest.approx((1.0, 0.0, 2 / 3))
    assert s.iou == pytest.approx(1 / 3)  # mean over classes 1 and 2


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="differ in shape"):
        confusion_matrix(np.zeros((2, 2), int), np.zeros((3, 2), int), 2)


def test_instance_measures():
    truth = np.zeros((10, 10), int)
    truth[1:4, 1:4] = 1
    truth[6:9, 6:9] = 1
    labels = instance_labels(truth)
    assert labels.max() == 2
    assert adapted_rand_error(labels, labels) == 0.0
    assert variation_of_information(labels, labels) == pytest.approx(0.0, abs=1e-12)
    merged = (truth > 0).astype(int)  # one label for both objects
    assert adapted_rand_error(merged, labels) > 0.2
    assert variation_of_information(merged, labels) > 0.5


def test_rand_error_without_true_objects_is_undefined_and_left_out_of_means(recwarn):
    """A truth without objects divided 0 by 0 (a RuntimeWarning and NaN in every mean)."""
    from app.core.metrics import mean_defined

    empty, objects = np.zeros((6, 6), int), np.zeros((6, 6), int)
    objects[1:3, 1:3] = 1
    assert np.isnan(adapted_rand_error(objects, empty)) and np.isnan(adapted_rand_error(empty, empty))
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
    assert mean_defined([0.2, float("nan"), 0.4]) == pytest.approx(0.3)
    assert mean_defined([float("nan"), None]) is None and mean_defined([]) is None


def test_error_map_codes_and_colours():
    target = np.array([1, 1, 0, 0])
    pred = np.array([1, 0, 1, 0])
    codes = error_map(pred, target)
    assert codes.tolist() == [TRUE_POSITIVE, FALSE_NEGATIVE, FALSE_POSITIVE, TRUE_NEGATIVE]
    assert ERROR_COLOURS[codes].shape == (4, 3)


def test_accumulator_micro_and_macro():
    acc = ScoreAccumulator(2)
    acc.add(np.array([1, 1]), np.array([1, 1]))  # perfect
    acc.add(np.array([0, 0, 0, 0]), np.array([1, 1, 0, 0]))  # iou 0
    assert acc.macro()["iou"] == pytest.approx(0.5)
    assert acc.micro().iou == pytest.approx(0.5)  # tp 2, fn 2
    assert acc.micro().pixel_accuracy == pytest.approx(4 / 6)
