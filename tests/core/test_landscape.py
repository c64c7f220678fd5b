"""Loss landscapes (app.core.landscape) and ``segstudio landscape`` on a tiny U-Net."""

from __future__ import annotations

import argparse
import copy
import json
import re

import numpy as np
import pytest
import torch
from torch import nn

from app.core.config import ExperimentConfig
from app.core.demo_data import write_demo_dataset
from app.core.imageio import read_image
from app.core.landscape import (LandscapeBatch, LandscapeResult, build_losses, fixed_batch, list_snapshots,
                                loss_vs_prediction, random_direction, random_directions, render_figure,
                                save_snapshot, slice_1d, slice_2d, snapshot_slice)
from app.core.losses import build_loss
from app.core.models import build_model
from app.core.training.checkpoint import save_checkpoint
from app.core.training.data import Normaliser


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models: intra-op threads only add overhead, so run single-threaded."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_model(seed: int = 0, classes: int = 2, name: str = "unet") -> nn.Module:
    """Depth-2, width-4 model with non-trivial batch-norm statistics and affine parameters (so
    folding batch norm into the convolutions is really exercised)."""
    torch.manual_seed(seed)
    model = build_model(name, 1, classes, depth=2, base_width=4)
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                n = module.num_features
                module.running_mean.copy_(torch.rand(n, generator=gen) - 0.5)
                module.running_var.copy_(0.5 + torch.rand(n, generator=gen))
                module.weight.copy_(0.5 + torch.rand(n, generator=gen))
                module.bias.copy_(0.2 * torch.rand(n, generator=gen) - 0.1)
    return model.eval()


def random_batch(n: int = 3, size: int = 32, seed: int = 0) -> LandscapeBatch:
    gen = torch.Generator().manual_seed(seed)
    images = torch.randn(n, 1, size, size, generator=gen)
    targets = (torch.rand(n, size, size, generator=gen) < 0.4).long()
    return LandscapeBatch(images, targets, torch.ones(n, size, size), [f"img{i}" for i in range(n)])


LOSS_NAMES = "dice,bce,focal,tversky:alpha=0.7:beta=0.3"


@pytest.fixture(scope="module")
def setup():
    model = tiny_model()
    return model, random_batch(), build_losses(LOSS_NAMES, num_classes=2), random_directions(model, 2, seed=3)


def direct_losses(model, batch, losses) -> list[float]:
    model.eval()
    with torch.no_grad():
        logits = model(batch.images)
    return [float(loss(logits, batch.targets, batch.weights)) for loss in losses.values()]


# -- directions ------------------------------------------------------------------------------

def test_directions_are_filter_normalised_and_skip_biases_and_batch_norm():
    model = tiny_model()
    direction = random_direction(model, seed=5)
    params = dict(model.named_parameters())
    assert list(direction) == list(params)
    moving = 0
    for name, d in direction.items():
        w = params[name].detach()
        assert d.shape == w.shape
        if w.dim() <= 1:  # biases, batch-norm weight and bias
            assert not d.any(), name
            continue
        moving += 1
        d_norms = d.reshape(d.shape[0], -1).norm(dim=1)
        w_norms = w.reshape(w.shape[0], -1).norm(dim=1)
        np.testing.assert_allclose(d_norms.numpy(), w_norms.numpy(), rtol=1e-5, err_msg=name)
        assert not torch.allclose(d, w)  # random, not the weights themselves
    assert moving == 13  # 10 convolutions + 2 transposed + head of a depth-2 U-Net
    bn = [n for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)]
    assert bn and all(not direction[f"{n}.weight"].any() and not direction[f"{n}.bias"].any() for n in bn)


def test_same_seed_gives_the_same_directions_and_another_seed_other_ones():
    model = tiny_model()
    a, b = random_directions(model, 2, seed=7), random_directions(model, 2, seed=7)
    for da, db in zip(a, b):
        assert all(torch.equal(da[n], db[n]) for n in da)
    other = random_direction(model, seed=8)
    name = "down.0.0.weight"
    assert not torch.equal(a[0][name], other[name])
    assert not torch.equal(a[0][name], a[1][name])  # the two directions of one seed differ
    assert torch.equal(a[1][name], random_direction(model, seed=7, index=1)[name])


# -- slices ----------------------------------------------------------------------------------

def test_slices_have_the_documented_shapes_and_finite_values(setup):
    model, batch, losses, dirs = setup
    one = slice_1d(model, batch, losses, dirs[0], steps=5, span=0.5)
    assert one.values.shape == (4, 5) and one.dims == 1 and one.losses == list(losses)
    np.testing.assert_array_equal(one.axes[0], [-0.5, -0.25, 0.0, 0.25, 0.5])
    two = slice_2d(model, batch, losses, dirs, steps=3, span=1.0)
    assert two.values.shape == (4, 3, 3) and two.dims == 2
    np.testing.assert_array_equal(two.axes[1], [-1.0, 0.0, 1.0])
    assert np.isfinite(one.values).all() and np.isfinite(two.values).all()
    assert two.meta["images"] == 3 and two.meta["image_size"] == [32, 32] and two.meta["steps"] == [3, 3]
    assert np.ptp(two.values, axis=(1, 2)).min() > 0  # the weights really moved


def test_centre_equals_the_loss_of_the_unchanged_model(setup):
    model, batch, losses, dirs = setup
    expected = direct_losses(model, batch, losses)
    exact = slice_2d(model, batch, losses, dirs, steps=3, optimise=False)
    assert exact.centre.tolist() == expected  # same network, same ops: bit for bit
    assert exact.values[:, 1, 1].tolist() == expected
    fast = slice_2d(model, batch, losses, dirs, steps=3)  # batch norm folded, channels-last
    np.testing.assert_allclose(fast.centre, expected, rtol=1e-5)
    np.testing.assert_allclose(fast.values, exact.values, rtol=1e-4)


def test_a_grid_point_is_the_loss_of_the_model_moved_along_the_directions(setup):
    model, batch, losses, dirs = setup
    result = slice_2d(model, batch, losses, dirs, steps=3, span=0.8)
    moved = copy.deepcopy(model)
    with torch.no_grad():
        for name, p in moved.named_parameters():
            p.add_(-0.8 * dirs[0][name] + 0.8 * dirs[1][name])
    np.testing.assert_allclose(result.values[:, 0, 2], direct_losses(moved, batch, losses), rtol=1e-4)


def test_the_two_dimensional_row_through_the_centre_is_the_one_dimensional_slice(setup):
    model, batch, losses, dirs = setup
    one = slice_1d(model, batch, losses, dirs[0], steps=5)
    two = slice_2d(model, batch, losses, dirs, steps=5)
    np.testing.assert_array_equal(two.values[:, :, 2], one.values)
    np.testing.assert_array_equal(two.curve(1), one.values[1])


def test_the_model_is_left_exactly_as_it_was(setup):
    _, batch, losses, dirs = setup
    model = tiny_model()
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    for optimise in (True, False):
        slice_2d(model, batch, losses, dirs, steps=3, optimise=optimise)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # bitwise, buffers included
    assert model.training and all(m.training for m in model.modules())


def test_batch_size_chunks_give_the_same_values(setup):
    model, batch, losses, dirs = setup
    whole = slice_1d(model, batch, losses, dirs[0], steps=3, optimise=False)
    chunked = slice_1d(model, batch, losses, dirs[0], steps=3, optimise=False, batch_size=2)
    np.testing.assert_allclose(chunked.values, whole.values, rtol=1e-6)


def test_cpu_passes_hold_about_one_256_square_image_unless_told(setup):
    from app.core.landscape import PerturbedModel

    model, _, _, dirs = setup
    twin = PerturbedModel(model, dirs, "cpu")
    assert twin.default_chunk(torch.zeros(4, 1, 256, 256)) == 1
    assert twin.default_chunk(torch.zeros(4, 1, 512, 512)) == 1
    assert twin.default_chunk(torch.zeros(8, 1, 128, 128)) == 4
    assert twin.default_chunk(torch.zeros(3, 1, 32, 32)) == 3


def test_progress_reports_every_point_and_should_stop_stops(setup):
    model, batch, losses, dirs = setup
    calls = []
    slice_2d(model, batch, losses, dirs, steps=3, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(i, 9) for i in range(1, 10)]
    asked = []
    with pytest.raises(InterruptedError):
        slice_2d(model, batch, losses, dirs, steps=3, should_stop=lambda: asked.append(1) or len(asked) > 4)
    assert len(asked) == 5


def test_a_stop_lands_inside_a_point(setup):
    """The stop was checked between points only: closing the window during a minute-long point of
    big images froze it for 30 s, then Qt aborted the process."""
    model, batch, losses, dirs = setup
    asked, done = [], []
    with pytest.raises(InterruptedError):
        slice_2d(model, batch, losses, dirs, steps=3, progress=lambda d, t: done.append(d),
                 should_stop=lambda: asked.append(1) or len(asked) > 2)
    assert done == [] and len(asked) == 3  # before the first point, then in its first two layers
    assert np.isfinite(slice_1d(model, batch, losses, dirs[0], steps=3).values).all()  # the model runs as before


def test_an_even_step_count_still_reports_the_centre(setup):
    model, batch, losses, dirs = setup
    result = slice_1d(model, batch, losses, dirs[0], steps=4)
    assert 0.0 not in result.axes[0] and result.centre_index() is None
    np.testing.assert_allclose(result.centre, direct_losses(model, batch, losses), rtol=1e-5)


def test_valid_convolution_models_score_the_centre_of_the_targets():
    model = build_model("unet_valid", 1, 2, depth=2, base_width=4).eval()
    batch = random_batch(2, 60)
    losses = build_losses("bce,dice")
    result = slice_1d(model, batch, losses, random_direction(model), steps=3)
    with torch.no_grad():
        logits = model(batch.images)
    assert logits.shape[-1] == 20
    c = (60 - 20) // 2
    target = batch.targets[:, c:-c, c:-c]
    expected = [float(loss(logits, target, torch.ones_like(target, dtype=torch.float32))) for loss in losses.values()]
    np.testing.assert_allclose(result.centre, expected, rtol=1e-5)


def test_weighted_ce_needs_the_weight_map(setup):
    model, batch, _, dirs = setup
    losses = build_losses("weighted_ce")
    with pytest.raises(ValueError, match="weight map"):
        slice_1d(model, batch, losses, dirs[0], steps=3)
    border = torch.where(batch.targets > 0, 2.0, 1.0)
    weighted = LandscapeBatch(batch.images, batch.targets, batch.weights, weight_map=border)
    result = slice_1d(model, weighted, losses, dirs[0], steps=3)
    with torch.no_grad():
        expected = float(losses["weighted_ce"](model(batch.images), batch.targets, border))
    assert result.centre[0] == pytest.approx(expected, rel=1e-5)


def test_snapshot_slice_is_one_dimensional_by_default_and_repeatable(setup, tmp_path):
    model, batch, losses, _ = setup
    model.train()
    try:
        first = snapshot_slice(model, batch, losses, steps=5, seed=4)
        second = snapshot_slice(model, batch, losses, steps=5, seed=4)
        assert model.training  # the engine's model stays in training mode
    finally:
        model.eval()
    assert first.dims == 1 and first.values.shape == (4, 5) and first.meta["seed"] == 4
    np.testing.assert_array_equal(first.values, second.values)
    other = snapshot_slice(model, batch, losses, steps=5, seed=5)
    assert not np.array_equal(first.values, other.values)
    assert snapshot_slice(model, batch, losses, steps=3, dims=2).values.shape == (4, 3, 3)
    save_snapshot(tmp_path, 12, first)
    save_snapshot(tmp_path, 3, second)
    (tmp_path / "landscapes" / "notes.txt").write_text("not a slice")
    listed = list_snapshots(tmp_path)
    assert [(e, p.name) for e, p in listed] == [(3, "epoch_003.npz"), (12, "epoch_012.npz")]
    assert LandscapeResult.load(listed[1][1]).meta["epoch"] == 12
    assert list_snapshots(tmp_path / "nothing") == []


# -- results and figure ----------------------------------------------------------------------

def test_result_saves_and_loads_as_npz(setup, tmp_path):
    model, batch, losses, dirs = setup
    result = slice_2d(model, batch, losses, dirs, steps=3, meta={"checkpoint": tmp_path / "best.pt"})
    path = result.save(tmp_path / "landscape.npz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["landscape.npz"]  # no temporary file left
    loaded = LandscapeResult.load(path)
    assert loaded.losses == list(losses)
    np.testing.assert_array_equal(loaded.values, result.values)
    np.testing.assert_array_equal(loaded.centre, result.centre)
    assert [a.tolist() for a in loaded.axes] == [[-1.0, 0.0, 1.0]] * 2
    assert loaded.meta["checkpoint"] == str(tmp_path / "best.pt") and loaded.centre_index() == (1, 1)
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="bad.npz"):
        LandscapeResult.load(tmp_path / "bad.npz")


@pytest.mark.parametrize("change, words", [
    ({"meta": np.array(json.dumps([1, 2]))}, "its settings are a JSON list"),
    ({"meta": np.array(json.dumps({"span": "1.0"}))}, "its setting 'span' is '1.0', not a number"),
    ({"losses": np.array("dice")}, "it names no losses"),
    ({"losses": np.array([], dtype=np.str_), "values": np.zeros((0, 3)), "centre": np.zeros(0)}, "names no losses"),
    ({"axis_1": np.zeros(3)}, "values must be losses × steps × steps"),  # values are 1-D: shapes disagree
    ({"axis_0": np.zeros(1), "values": np.zeros((1, 1)), "centre": np.zeros(1)}, "2 or more steps"),
])
def test_files_that_are_not_landscapes_are_refused_by_name(tmp_path, change, words):
    """Another program's or version's .npz raised AttributeError, IndexError or TypeError in the
    viewer, on the GUI thread, or made one damaged stored slice hide all of them."""
    arrays = {"losses": np.array(["dice"]), "axis_0": np.linspace(-1, 1, 3), "values": np.ones((1, 3)),
              "centre": np.ones(1), "meta": np.array(json.dumps({"span": 1.0}))}
    np.savez(tmp_path / "bad.npz", **{**arrays, **change})
    with pytest.raises(ValueError, match=f"bad.npz: not a readable landscape file .*{re.escape(words)}"):
        LandscapeResult.load(tmp_path / "bad.npz")
    np.savez(tmp_path / "good.npz", **arrays)
    assert LandscapeResult.load(tmp_path / "good.npz").losses == ["dice"]


def test_figure_has_a_row_per_loss_with_curve_and_map_side_by_side():
    axis = np.linspace(-1, 1, 7)
    a, b = np.meshgrid(axis, axis, indexing="ij")
    values = np.stack([a**2 + 2 * b**2, 1 + np.abs(a) + np.abs(b)])
    two = LandscapeResult(["bowl", "cone"], [axis, axis], values, values[:, 3, 3])
    one = LandscapeResult(["bowl"], [axis], values[:1, :, 3], values[:1, 3, 3])
    img2, img1 = render_figure(two), render_figure(one)
    assert img2.dtype == np.uint8 and img2.ndim == 3 and img2.shape[2] == 3
    assert img2.shape[0] > 1.8 * img1.shape[0] and img2.shape[1] > 1.6 * img1.shape[1]
    assert (img2 < 250).mean() > 0.05  # something is drawn
    values[0, 0, 0] = np.inf  # a diverged corner must not break the drawing
    assert render_figure(LandscapeResult(["bowl", "cone"], [axis, axis], values, values[:, 3, 3])).shape == img2.shape


def test_overflowed_points_are_grey_cells_and_counted_not_an_invented_basin():
    """Non-finite points took the highest value and were interpolated: a smooth basin with no word."""
    from app.core.landscape.figure import LIGHT, _not_finite

    axis = np.linspace(-1, 1, 7)
    a, b = np.meshgrid(axis, axis, indexing="ij")
    values = (a**2 + b**2)[None]
    light = [int(np.all(render_figure(LandscapeResult(["bowl"], [axis, axis], v, v[:, 3, 3])) == LIGHT, axis=2).sum())
             for v in (values, np.where(a < -0.5, np.nan, values))]
    assert light[1] > light[0] + 1000  # the cells at a = -1 and -2/3 are grey
    assert _not_finite(np.where(a < -0.5, np.inf, values)[0]) == ", 14 of 49 points not finite"
    assert _not_finite(values[0]) == ""


def test_a_skewed_surface_is_coloured_on_a_log_scale_with_the_median_mid_scale():
    from app.core.landscape.figure import ColourScale

    skewed = np.array([[1.0, 1.1, 1.2], [1.05, 1.15, 1.3], [1.25, 2.0, 50.0]])
    scale = ColourScale(skewed)
    assert scale.log and scale.u(np.median(skewed)) == pytest.approx(0.5)
    assert scale.u(1.0) == 0.0 and scale.u(50.0) == pytest.approx(1.0)
    assert scale.value(scale.u(1.3)) == pytest.approx(1.3)
    even = ColourScale(np.arange(9.0).reshape(3, 3))
    assert not even.log and even.u(4.0) == pytest.approx(0.5)


# -- fixed batch -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def dataset_and_checkpoint(tmp_path_factory):
    root = tmp_path_factory.mktemp("landscape")
    data = write_demo_dataset(root / "data", count=5, size=48, val_fraction=0.4)
    config = ExperimentConfig.from_dict({"model": {"name": "unet", "params": {"depth": 2, "base_width": 4}},
                                         "loss": {"name": "tversky", "params": {"alpha": 0.8, "beta": 0.2}},
                                         "data": {"path": str(data), "patch_size": 32}})
    model = tiny_model()
    normaliser = Normaliser([100.0], [50.0])
    (root / "run" / "checkpoints").mkdir(parents=True)
    checkpoint = save_checkpoint(root / "run" / "checkpoints" / "best.pt", {
        "model_name": "unet", "model_state": model.state_dict(), "config": config.to_dict(),
        "in_channels": 1, "num_classes": 2, "normaliser": normaliser.to_dict(), "image_dtype": "uint8"})
    return data, checkpoint, config, model, normaliser


def test_fixed_batch_is_normalised_centre_crops_of_validation_images(dataset_and_checkpoint):
    data, _, config, _, normaliser = dataset_and_checkpoint
    batch = fixed_batch(config, data, count=4, patch=32, normaliser=normaliser)
    assert batch.split == "val" and batch.count == 2 and batch.size == (32, 32)  # only 2 validation images
    for i, name in enumerate(batch.names):
        image = read_image(data / "val" / "images" / f"{name}.png").astype(np.float32)
        mask = read_image(data / "val" / "masks" / f"{name}.png")
        np.testing.assert_allclose(batch.images[i, 0].numpy(), (image[8:40, 8:40] - 100.0) / 50.0, rtol=1e-6)
        np.testing.assert_array_equal(batch.targets[i].numpy(), (mask[8:40, 8:40] > 0).astype(np.int64))
    assert batch.weights.dtype == torch.float32 and bool((batch.weights == 1).all())
    whole = fixed_batch(config, data, count=1, patch=None, seed=1, normaliser=normaliser)
    assert whole.count == 1 and whole.size == (48, 48) and whole.names[0] in batch.names
    again = fixed_batch(config, data, count=1, patch=None, seed=1, normaliser=normaliser)
    assert again.names == whole.names and torch.equal(again.images, whole.images)
    # A patch larger than every image was padded (weighted 0): the same loss at (5000/48)² times the work.
    cut = fixed_batch(config, data, count=1, patch=5000, normaliser=normaliser)
    assert cut.size == (48, 48) and float(cut.weights.sum()) == 48 * 48 and cut.asked_patch == 5000
    assert cut.describe() == "1 val image (48×48; patch 5000 cut to the largest image)"
    assert cut.to("cpu").asked_patch == 5000 and whole.asked_patch is None


def test_build_losses_uses_the_experiment_parameters_and_checks_the_classes(dataset_and_checkpoint):
    config = dataset_and_checkpoint[2]
    own = build_losses(None, config)
    assert list(own) == ["tversky"] and (own["tversky"].alpha, own["tversky"].beta) == (0.8, 0.2)
    listed = build_losses(["tversky:alpha=0.3", "focal:gamma=0"], config)
    assert listed["tversky:alpha=0.3"].alpha == 0.3 and listed["focal:gamma=0"].gamma == 0.0
    with pytest.raises(ValueError, match="binary"):
        build_losses("bce", num_classes=3)
    with pytest.raises(ValueError, match="no_such_loss"):
        build_losses("no_such_loss")
    with pytest.raises(ValueError, match="key=value"):
        build_losses("tversky:alpha")


# -- loss versus prediction ------------------------------------------------------------------

def test_bce_and_focal_against_their_closed_forms():
    losses = {"bce": build_loss("bce"), "focal": build_loss("focal", gamma=2.0, alpha=0.25)}
    curves = loss_vs_prediction(losses, points=11)
    p = curves.p
    assert p[0] == pytest.approx(1e-3) and p[5] == 0.5 and p[-1] == pytest.approx(1 - 1e-3)
    value, grad = curves.of("bce", "foreground")
    np.testing.assert_allclose(value, -np.log(p), rtol=1e-5)
    np.testing.assert_allclose(grad, -1 / p, rtol=1e-4)  # the losses compute in float32: 1 − σ(z) near p = 1
    value, grad = curves.of("bce", "background")
    np.testing.assert_allclose(value, -np.log(1 - p), rtol=1e-5, atol=1e-6)  # float32 cancellation at p → 0
    np.testing.assert_allclose(grad, 1 / (1 - p), rtol=1e-4)
    value, grad = curves.of("focal", "foreground")
    np.testing.assert_allclose(value, -0.25 * (1 - p) ** 2 * np.log(p), rtol=1e-4)
    np.testing.assert_allclose(grad, 0.25 * (2 * (1 - p) * np.log(p) - (1 - p) ** 2 / p), rtol=1e-4, atol=1e-7)


def test_dice_treats_the_pixel_as_one_of_an_otherwise_perfect_image():
    curves = loss_vs_prediction({"dice": build_loss("dice")}, points=5, context=64)
    p, s = curves.p, 1e-5
    tp = 32 + p  # 32 perfectly predicted foreground pixels besides this one
    expected = 1 - (2 * tp + s) / (2 * tp + (1 - p) + s)
    value, grad = curves.of("dice", "foreground")
    np.testing.assert_allclose(value, expected, rtol=1e-4, atol=1e-7)
    assert (grad < 0).all()  # more foreground probability, lower loss
    value, grad = curves.of("dice", "background")  # FP = p
    np.testing.assert_allclose(value, 1 - (64 + s) / (64 + p + s), rtol=1e-4, atol=1e-7)
    assert (grad > 0).all()


# -- command line ----------------------------------------------------------------------------

def run_cli(argv):
    from app.cli import landscape

    parser = argparse.ArgumentParser()
    landscape.register(parser.add_subparsers())
    args = parser.parse_args(["landscape", *argv])
    return args.func(args)


def test_cli_writes_npz_and_png_and_prints_timing(dataset_and_checkpoint, tmp_path, capsys):
    data, checkpoint, config, model, normaliser = dataset_and_checkpoint
    out = tmp_path / "out"
    code = run_cli(["--checkpoint", str(checkpoint), "--data", str(data), "--losses", "tversky,bce",
                    "--steps", "3", "--span", "0.5", "--images", "2", "--dims", "2", "--out", str(out),
                    "--device", "cpu"])
    assert code == 0
    result = LandscapeResult.load(out / "landscape.npz")
    assert result.losses == ["tversky", "bce"] and result.values.shape == (2, 3, 3)
    assert np.isfinite(result.values).all() and result.meta["model"] == "unet" and result.meta["patch"] == 32
    batch = fixed_batch(config, data, count=2, patch=32, normaliser=normaliser)
    losses = build_losses("tversky,bce", config)
    np.testing.assert_allclose(result.centre, direct_losses(model, batch, losses), rtol=1e-5)
    png = read_image(out / "landscape.png")
    assert png.ndim == 3 and png.shape[0] > 400
    text = capsys.readouterr().out
    assert "computed in" in text and "ms per point" in text and "landscape.png" in text
    from app.cli import CommandError

    before = (out / "landscape.png").read_bytes()
    with pytest.raises(CommandError, match="landscape.png exist; add --force"):  # refused before computing
        run_cli(["--checkpoint", str(checkpoint), "--data", str(data), "--steps", "3", "--out", str(out)])
    assert (out / "landscape.png").read_bytes() == before


def test_cli_defaults_to_the_checkpoint_loss_and_the_run_folder(dataset_and_checkpoint):
    data, checkpoint, *_ = dataset_and_checkpoint
    assert run_cli(["--checkpoint", str(checkpoint), "--data", str(data), "--steps", "3", "--dims", "1",
                    "--device", "cpu"]) == 0
    folder = checkpoint.parent.parent / "landscape"
    result = LandscapeResult.load(folder / "landscape.npz")
    assert result.losses == ["tversky"] and result.values.shape == (1, 3) and (folder / "landscape.png").is_file()


def test_cli_rejects_bad_options_with_a_message(dataset_and_checkpoint):
    from app.cli import CommandError

    _, checkpoint, *_ = dataset_and_checkpoint
    with pytest.raises(CommandError, match="--steps"):
        run_cli(["--checkpoint", str(checkpoint), "--steps", "1"])
    with pytest.raises(CommandError, match="--span"):
        run_cli(["--checkpoint", str(checkpoint), "--span", "0"])
    with pytest.raises(CommandError, match="--span must be a number above 0, got inf"):
        run_cli(["--checkpoint", str(checkpoint), "--span", "inf"])
    data = dataset_and_checkpoint[0]
    masks = next(p for p in data.rglob("masks") if p.is_dir())
    before = sorted(p.name for p in masks.iterdir())
    with pytest.raises(CommandError, match="inside the dataset folder"):
        run_cli(["--checkpoint", str(checkpoint), "--data", str(data), "--steps", "3", "--out", str(masks)])
    assert sorted(p.name for p in masks.iterdir()) == before


def test_a_mistyped_data_folder_is_named_not_the_output_blamed(dataset_and_checkpoint, tmp_path, monkeypatch):
    """A missing --data was taken for a file in the working folder: "…/landscape is inside the dataset folder"."""
    _, checkpoint, *_ = dataset_and_checkpoint
    monkeypatch.chdir(tmp_path)
    with pytest.raises(Exception, match="dataset folder does not exist: dta"):
        run_cli(["--checkpoint", str(checkpoint), "--data", "dta", "--steps", "3", "--dims", "1",
                 "--out", str(tmp_path / "out")])
    assert not (tmp_path / "out").exists()


def test_landscape_command_is_registered_with_the_segstudio_entry_point(capsys):
    from app.cli import main

    with pytest.raises(SystemExit):
        main(["landscape", "--help"])
    assert "--checkpoint" in capsys.readouterr().out
    assert main(["landscape", "--checkpoint", "/no/such/checkpoint.pt"]) == 2
    assert "segstudio landscape:" in capsys.readouterr().err
