"""Tiled whole-image prediction (app.core.inference)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from app.core.inference import TileSettings, predict_labels, predict_probabilities, tile_positions
from app.core.models import build_model

ATOL = 1e-5


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """The test models are tiny: intra-op threads only add overhead (and stall badly when the
    machine is busy), so run this module single-threaded and restore the setting after."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def image(h: int, w: int, channels: int = 0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (h, w) if channels == 0 else (h, w, channels)
    return rng.standard_normal(shape).astype(np.float32)


def tiny_unet(in_ch: int = 1, classes: int = 2, **kw) -> nn.Module:
    return build_model("unet", in_ch, classes, depth=2, base_width=4, **kw)


def tiny_valid(in_ch: int = 1, classes: int = 2) -> nn.Module:
    return build_model("unet_valid", in_ch, classes, depth=2, base_width=4)  # margin 20 px


def direct(model: nn.Module, array_hwc: np.ndarray) -> np.ndarray:
    """softmax/sigmoid of one forward pass over the whole (already padded) array, C×H×W."""
    model.eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(np.ascontiguousarray(array_hwc.transpose(2, 0, 1)))[None])[0]
    if logits.shape[0] == 1:
        p = torch.sigmoid(logits)
        return torch.cat([1 - p, p]).numpy()
    return torch.softmax(logits, 0).numpy()


class SmallConv(nn.Module):
    """Two zero-padded 3×3 convolutions: receptive-field radius 2, any input size."""

    radius = 2

    def __init__(self, in_channels: int = 1, num_classes: int = 3):
        super().__init__()
        self.in_channels, self.num_classes = in_channels, num_classes
        self.a = nn.Conv2d(in_channels, 4, 3, padding=1)
        self.b = nn.Conv2d(4, num_classes, 3, padding=1)

    def forward(self, x):
        return self.b(torch.relu(self.a(x)))


class SymmetricConv(nn.Module):
    """A 3×3 convolution whose kernel is symmetric under both flips: flip-equivariant."""

    def __init__(self, num_classes: int = 2):
        super().__init__()
        self.in_channels, self.num_classes = 1, num_classes
        self.conv = nn.Conv2d(1, num_classes, 3, padding=1)
        with torch.no_grad():
            k = self.conv.weight
            k.copy_((k + k.flip(2) + k.flip(3) + k.flip(2, 3)) / 4)

    def forward(self, x):
        return self.conv(x)


class Recorder(nn.Module):
    """Records the shape of every batch it is given; per-pixel linear logits."""

    def __init__(self):
        super().__init__()
        self.in_channels, self.num_classes = 1, 2
        self.conv = nn.Conv2d(1, 2, 1)
        self.shapes: list[tuple[int, ...]] = []

    def forward(self, x):
        self.shapes.append(tuple(x.shape))
        return self.conv(x)


def assert_probabilities(p: np.ndarray, classes: int, h: int, w: int):
    assert p.dtype == np.float32
    assert p.shape == (classes, h, w)
    assert np.all(p >= -1e-6) and np.all(p <= 1 + 1e-6)
    np.testing.assert_allclose(p.sum(0), 1.0, atol=1e-5)


# ----------------------------------------------------------------------------- tile_positions

@pytest.mark.parametrize("length,tile,stride", [
    (100, 32, 24), (32, 32, 24), (33, 32, 24), (64, 32, 32), (65, 32, 32), (1000, 256, 192),
    (10, 1, 1), (57, 16, 5), (20, 32, 24), (7, 3, 100),
])
def test_tile_positions_cover_without_duplicates(length, tile, stride):
    pos = tile_positions(length, tile, stride)
    assert pos[0] == 0
    assert pos == sorted(set(pos)), "sorted, no duplicates"
    if length <= tile:
        assert pos == [0]
        return
    assert pos[-1] + tile == length, "last tile ends at the edge"
    assert all(0 <= p and p + tile <= length for p in pos), "no tile outside the image"
    covered = np.zeros(length, bool)
    for p in pos:
        covered[p:p + tile] = True
    assert covered.all()
    assert all(b - a <= stride for a, b in zip(pos, pos[1:]))


def test_tile_positions_rejects_nonsense():
    with pytest.raises(ValueError):
        tile_positions(10, 0, 1)
    with pytest.raises(ValueError):
        tile_positions(10, 4, 0)


@pytest.mark.parametrize("kwargs", [{"tile": 0}, {"overlap": 0.95}, {"overlap": -0.1},
                                    {"batch_size": 0}, {"blend": "linear"}])
def test_tile_settings_validated(kwargs):
    with pytest.raises(ValueError):
        TileSettings(**kwargs)


# ----------------------------------------------------------------------------- same-size models

def test_one_tile_equals_direct_forward():
    model = tiny_unet()
    img = image(32, 32)
    p = predict_probabilities(model, img, TileSettings(tile=32))
    np.testing.assert_allclose(p, direct(model, img[:, :, None]), atol=ATOL)


def test_image_smaller_than_tile_is_mirror_padded_to_the_tile():
    model = tiny_unet()
    img = image(21, 13)
    p = predict_probabilities(model, img, TileSettings(tile=32))
    padded = np.pad(img[:, :, None], ((0, 11), (0, 19), (0, 0)), mode="reflect")
    np.testing.assert_allclose(p, direct(model, padded)[:, :21, :13], atol=ATOL)


@pytest.mark.parametrize("blend", ["constant", "gaussian"])
def test_tiled_matches_whole_image_away_from_tile_borders(blend):
    """Tiles zero-pad at their own borders, so pixels within the receptive-field radius of an
    inner tile border differ from a whole-image pass; every other pixel must match (any blend
    averages identical values there)."""
    model = SmallConv()
    h, w, tile = 70, 90, 32
    settings = TileSettings(tile=tile, overlap=0.5, blend=blend)
    img = image(h, w)
    tiled = predict_probabilities(model, img, settings)
    whole = direct(model, img[:, :, None])

    def good(length):
        ok = np.ones(length, bool)
        for o in tile_positions(length, tile, settings.stride()):
            if o > 0:
                ok[o:o + model.radius] = False
            if o + tile < length:
                ok[o + tile - model.radius:o + tile] = False
        return ok

    mask = good(h)[:, None] & good(w)[None, :]
    assert mask.mean() > 0.5
    np.testing.assert_allclose(tiled[:, mask], whole[:, mask], atol=1e-4)
    assert np.abs(tiled - whole).max() > 1e-4, "tile borders do differ: the mask is not trivial"


def test_non_square_three_channel_and_shape():
    model = tiny_unet(in_ch=3, classes=3)
    p = predict_probabilities(model, image(23, 71, channels=3), TileSettings(tile=16, overlap=0.5))
    assert_probabilities(p, 3, 23, 71)


def test_hw_input_equals_hw1_input():
    model = tiny_unet()
    img = image(40, 28)
    a = predict_probabilities(model, img, TileSettings(tile=16))
    b = predict_probabilities(model, img[:, :, None], TileSettings(tile=16))
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("h,w", [(1, 1), (1, 9), (3, 2), (5, 40)])
def test_tiny_images(h, w):
    p = predict_probabilities(tiny_unet(), image(h, w), TileSettings(tile=16))
    assert_probabilities(p, 2, h, w)


def test_single_logit_model_gives_two_channels():
    model = build_model("unet", 1, 1, depth=2, base_width=4)
    img = image(32, 32)
    p = predict_probabilities(model, img, TileSettings(tile=32))
    assert_probabilities(p, 2, 32, 32)
    np.testing.assert_allclose(p, direct(model, img[:, :, None]), atol=ATOL)
    tiled = predict_probabilities(model, image(50, 37), TileSettings(tile=16))
    assert_probabilities(tiled, 2, 50, 37)


@pytest.mark.parametrize("name,params", [
    ("unet_stride", {}), ("unet_dilate", {}), ("segnet", {}), ("unet_pp", {"deep_supervision": True}),
])
def test_other_models(name, params):
    model = build_model(name, 1, 3, depth=2, base_width=4, **params)
    model.train()
    p = predict_probabilities(model, image(30, 45), TileSettings(tile=16, batch_size=3))
    assert_probabilities(p, 3, 30, 45)
    assert model.training


def test_mean_std_applied_per_channel():
    model = tiny_unet(in_ch=2)
    img = image(20, 24, channels=2) * 5 + 3
    mean, std = [3.0, 1.0], [5.0, 2.0]
    a = predict_probabilities(model, img, TileSettings(tile=16), mean=mean, std=std)
    b = predict_probabilities(model, (img - np.float32(mean)) / np.float32(std), TileSettings(tile=16))
    np.testing.assert_allclose(a, b, atol=1e-6)
    assert not np.allclose(a, predict_probabilities(model, img, TileSettings(tile=16)), atol=1e-4)


def test_channel_mismatch_rejected():
    with pytest.raises(ValueError, match="channel"):
        predict_probabilities(tiny_unet(in_ch=3), image(16, 16), TileSettings(tile=16))


def test_predict_labels_is_argmax():
    model = tiny_unet(classes=3)
    img = image(30, 20)
    labels = predict_labels(model, img, TileSettings(tile=16))
    assert labels.dtype == np.uint8 and labels.shape == (30, 20)
    np.testing.assert_array_equal(labels, predict_probabilities(model, img, TileSettings(tile=16)).argmax(0))


# ----------------------------------------------------------------------------- unet_valid

def test_valid_one_tile_equals_mirror_padded_forward():
    model = tiny_valid()
    img = image(36, 36)  # 36 + 2·20 = 76 is a valid input side
    p = predict_probabilities(model, img, TileSettings(tile=36))
    padded = np.pad(img, 20, mode="reflect")[:, :, None]
    np.testing.assert_allclose(p, direct(model, padded), atol=ATOL)


def test_valid_odd_size_depends_only_on_image_plus_margin():
    """37×53 is not a valid size: the result has the full size and each pixel equals a forward
    of the image mirrored by the margin, whatever fills the rest of the (valid-sized) input."""
    model = tiny_valid()
    img = image(37, 53)
    p = predict_probabilities(model, img, TileSettings(tile=64))
    assert_probabilities(p, 2, 37, 53)
    padded = np.pad(img, 20, mode="reflect")                     # 77×93
    canvas = np.zeros((104, 104), np.float32)                    # valid input (output 64)
    canvas[:77, :93] = padded
    np.testing.assert_allclose(p, direct(model, canvas[:, :, None])[:, :37, :53], atol=ATOL)


@pytest.mark.parametrize("blend,overlap", [("constant", 0.0), ("gaussian", 0.25), ("constant", 0.5)])
def test_valid_tiling_is_seamless(blend, overlap):
    """Unpadded convolutions see the same input in any tile: small tiles equal one big tile."""
    model = tiny_valid(classes=3)
    img = image(37, 53)
    small = predict_probabilities(model, img, TileSettings(tile=10, overlap=overlap, blend=blend))
    big = predict_probabilities(model, img, TileSettings(tile=64))
    assert_probabilities(small, 3, 37, 53)
    np.testing.assert_allclose(small, big, atol=ATOL)


def test_valid_tile_rounded_up_to_a_valid_size():
    model = tiny_valid()
    recorder_shapes = []
    original = model.forward

    def forward(x):
        recorder_shapes.append(tuple(x.shape[-2:]))
        return original(x)

    model.forward = forward
    p = predict_probabilities(model, image(30, 30), TileSettings(tile=37))  # output 40 → input 80
    assert recorder_shapes == [(80, 80)]
    assert_probabilities(p, 2, 30, 30)


def test_valid_tiny_image_and_rgb():
    model = tiny_valid(in_ch=3)
    p = predict_probabilities(model, image(3, 2, channels=3), TileSettings(tile=8))
    assert_probabilities(p, 2, 3, 2)
    p = predict_probabilities(model, image(1, 1, channels=3), TileSettings(tile=8))
    assert_probabilities(p, 2, 1, 1)


# ----------------------------------------------------------------------------- flip TTA

def test_flip_tta_no_change_for_flip_equivariant_model():
    model = SymmetricConv()
    img = image(40, 33)
    settings = TileSettings(tile=16, overlap=0.25)
    plain = predict_probabilities(model, img, settings)
    tta = predict_probabilities(model, img, TileSettings(tile=16, overlap=0.25, flip_tta=True))
    np.testing.assert_allclose(tta, plain, atol=ATOL)


def test_flip_tta_averages_unflipped_flip_predictions():
    model = tiny_unet(classes=3)
    img = image(32, 32)
    one = TileSettings(tile=32)
    tta = predict_probabilities(model, img, TileSettings(tile=32, flip_tta=True))
    expected = np.mean([
        predict_probabilities(model, img, one),
        predict_probabilities(model, img[:, ::-1].copy(), one)[:, :, ::-1],
        predict_probabilities(model, img[::-1].copy(), one)[:, ::-1],
        predict_probabilities(model, img[::-1, ::-1].copy(), one)[:, ::-1, ::-1],
    ], axis=0)
    np.testing.assert_allclose(tta, expected, atol=ATOL)
    assert np.abs(tta - predict_probabilities(model, img, one)).max() > 1e-4
    assert_probabilities(tta, 3, 32, 32)


def test_flip_tta_multi_tile_random_model_stays_probability():
    model = tiny_valid(classes=3)
    img = image(37, 29)
    tta = predict_probabilities(model, img, TileSettings(tile=12, flip_tta=True))
    assert_probabilities(tta, 3, 37, 29)
    assert np.abs(tta - predict_probabilities(model, img, TileSettings(tile=12))).max() > 1e-4


# ----------------------------------------------------------------------------- batching, progress, stop

def test_batches_progress_and_tiles_inside_image():
    model = Recorder()
    h, w, tile = 50, 70, 16
    settings = TileSettings(tile=tile, overlap=0.25, batch_size=5)
    calls = []
    predict_probabilities(model, image(h, w), settings, progress=lambda d, t: calls.append((d, t)))
    total = len(tile_positions(h, tile, 12)) * len(tile_positions(w, tile, 12))
    assert settings.stride() == 12
    assert len(calls) == math.ceil(total / 5)
    assert [d for d, _ in calls] == [min(5 * (i + 1), total) for i in range(len(calls))]
    assert all(t == total for _, t in calls)
    assert [s[0] for s in model.shapes] == [5] * (total // 5) + ([total % 5] if total % 5 else [])
    assert all(s[-2:] == (tile, tile) for s in model.shapes)


def test_flip_tta_runs_four_passes_per_batch():
    model = Recorder()
    predict_probabilities(model, image(16, 16), TileSettings(tile=16, flip_tta=True))
    assert len(model.shapes) == 4


def test_should_stop_raises_and_restores_mode():
    model = tiny_unet()
    model.train()
    calls = []
    with pytest.raises(InterruptedError, match="prediction stopped"):
        predict_probabilities(model, image(64, 64), TileSettings(tile=16, batch_size=2),
                              progress=lambda d, t: calls.append(d), should_stop=lambda: len(calls) >= 1)
    assert calls == [2], "stopped after the first batch"
    assert model.training and all(m.training for m in model.modules())


def test_model_mode_restored():
    model = tiny_unet()
    model.train()
    model.down[0].eval()  # a frozen submodule stays frozen
    predict_probabilities(model, image(20, 20), TileSettings(tile=16))
    assert model.training
    assert not model.down[0].training and not any(m.training for m in model.down[0].modules())
    assert model.up.training
    model.eval()
    predict_probabilities(model, image(20, 20), TileSettings(tile=16))
    assert not any(m.training for m in model.modules())


def test_eval_mode_used_during_prediction():
    """Batch-norm in train mode would use batch statistics; eval-mode results must not change
    with the batch size."""
    model = tiny_unet()
    model.train()
    img = image(40, 40)
    a = predict_probabilities(model, img, TileSettings(tile=16, batch_size=1))
    b = predict_probabilities(model, img, TileSettings(tile=16, batch_size=9))
    np.testing.assert_allclose(a, b, atol=ATOL)


def test_amp_ignored_on_cpu():
    model = tiny_unet()
    img = image(24, 24)
    a = predict_probabilities(model, img, TileSettings(tile=16), autocast=torch.float16)
    b = predict_probabilities(model, img, TileSettings(tile=16))
    np.testing.assert_array_equal(a, b)
