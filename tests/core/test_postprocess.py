import numpy as np
import pytest

from app.core.postprocess import POSTPROCESS_PARAMS, WatershedParams, to_gray8, watershed_postprocess
from app.core.registry import RegistryError

from .helpers import ISBI

STEPS = ["grayscale", "threshold", "closing", "sure background", "distance transform", "sure foreground",
         "unknown region", "markers", "watershed", "result"]


def two_touching_discs(size=64):
    yy, xx = np.mgrid[:size, :size]
    a = (yy - 32) ** 2 + (xx - 20) ** 2 < 13**2
    b = (yy - 32) ** 2 + (xx - 44) ** 2 < 13**2
    return (a | b).astype(np.float32)


def test_steps_in_order_and_touching_objects_split():
    result = watershed_postprocess(two_touching_discs())
    assert [name for name, _ in result.steps] == STEPS
    assert result.object_count == 2
    left, right = result.labels[32, 20], result.labels[32, 44]
    assert left > 0 and right > 0 and left != right
    assert result.mask.dtype == np.uint8 and set(np.unique(result.mask)) <= {0, 1}
    assert result.step("watershed").min() == -1  # the boundary line between the two


def test_probability_and_uint8_inputs_agree():
    prob = two_touching_discs()
    a = watershed_postprocess(prob)
    b = watershed_postprocess((prob * 255).astype(np.uint8))
    c = watershed_postprocess(prob.astype(bool))
    assert np.array_equal(a.labels, b.labels) and np.array_equal(a.labels, c.labels)


def test_threshold_parameter():
    ramp = np.tile(np.linspace(0, 1, 64, dtype=np.float32), (16, 1))
    low = watershed_postprocess(ramp, WatershedParams(threshold=0.25, close_iterations=0, dilate_iterations=0))
    high = watershed_postprocess(ramp, WatershedParams(threshold=0.75, close_iterations=0, dilate_iterations=0))
    assert low.step("threshold").mean() > high.step("threshold").mean()
    assert abs(low.step("threshold")[0].mean() / 255 - 0.75) < 0.05


def test_empty_and_full_inputs():
    empty = watershed_postprocess(np.zeros((16, 16), np.float32))
    assert empty.object_count == 0 and empty.mask.sum() == 0 and len(empty.steps) == len(STEPS)
    full = watershed_postprocess(np.ones((16, 16), np.float32))
    assert full.object_count == 1 and full.mask.all()


def test_no_image_border_artefact():
    disc = two_touching_discs()
    disc[:, :4] = 1  # an object touching the left edge
    result = watershed_postprocess(disc, WatershedParams(foreground_fraction=0.3))
    assert result.mask[32, 0] == 1


def test_small_objects_removed_and_holes_filled():
    image = np.zeros((64, 64), np.float32)
    image[5:25, 5:25] = 1
    image[12:16, 12:16] = 0  # a hole
    image[40:43, 40:43] = 1  # a 9-pixel speck
    params = WatershedParams(foreground_fraction=0.3, close_iterations=0, dilate_iterations=1,
                             min_object_size=20, fill_holes=True)
    result = watershed_postprocess(image, params)
    names = [name for name, _ in result.steps]
    assert names[-2:] == ["small objects removed", "holes filled"]
    assert result.object_count == 1
    assert result.mask[41, 41] == 0 and result.mask[14, 14] == 1
    assert sorted(np.unique(result.labels).tolist()) == [0, 1]


def test_keep_steps_false_gives_same_result():
    prob = two_touching_discs()
    a = watershed_postprocess(prob)
    b = watershed_postprocess(prob, keep_steps=False)
    assert b.steps == [] and np.array_equal(a.labels, b.labels)


def test_params_validation_and_declaration():
    with pytest.raises(RegistryError, match="foreground_fraction"):
        WatershedParams(foreground_fraction=1.5)
    with pytest.raises(RegistryError, match="no parameter kernel"):
        WatershedParams.from_dict({"kernel": 3})
    params = WatershedParams.from_dict({"close_kernel": 5})
    assert params.close_kernel == 5 and WatershedParams.from_dict(params.to_dict()) == params
    assert {p.name for p in POSTPROCESS_PARAMS} == set(WatershedParams().to_dict())


def test_to_gray8_variants():
    assert to_gray8(np.array([[0.0, 1.0]])).tolist() == [[0, 255]]
    assert to_gray8(np.array([[0, 1]], np.uint8)).tolist() == [[0, 255]]
    assert to_gray8(np.array([[0, 200]], np.uint8)).tolist() == [[0, 200]]
    assert to_gray8(np.zeros((2, 2, 3), np.uint8)).shape == (2, 2)


@pytest.mark.skipif(not ISBI.exists(), reason="../shared/data/isbi2012 is not beside the project")
def test_isbi_mask_gives_many_objects():
    from app.core.imageio import read_image
    mask = read_image(ISBI / "masks" / "00.png")
    result = watershed_postprocess(mask, WatershedParams(foreground_fraction=0.2))
    assert result.object_count > 20


def test_settings_are_stored_as_their_declared_types():
    params = WatershedParams.from_dict({"close_kernel": 5.0, "distance_mask": 3.0, "foreground_fraction": 1})
    assert (params.close_kernel, params.distance_mask, params.foreground_fraction) == (5, 3, 1.0)
    assert type(params.close_kernel) is int and type(params.distance_mask) is int
    assert type(params.foreground_fraction) is float
    for bad, message in (({"close_kernel": 5.5}, "whole number"), ({"distance_mask": False}, "is not one of"),
                         ({"distance_mask": 4}, "is not one of")):
        with pytest.raises(RegistryError, match=message):
            WatershedParams.from_dict(bad)
