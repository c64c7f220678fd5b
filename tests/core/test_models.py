import pytest
import torch

from app.core.models import MODELS, available_models, build_model, count_parameters
from app.core.models.unet_valid import nearest_valid_sizes, valid_output_size
from app.core.registry import RegistryError

SMALL = {"base_width": 4, "depth": 2}


def logits(out):
    return out[-1] if isinstance(out, list) else out


@pytest.mark.parametrize("name", [n for n in MODELS.names() if n != "unet_valid"])
@pytest.mark.parametrize("in_channels", [1, 3])
@pytest.mark.parametrize("num_classes", [1, 2, 4])
def test_same_size_models_any_input_size(name, in_channels, num_classes):
    torch.manual_seed(0)
    model = build_model(name, in_channels, num_classes, **SMALL)
    for h, w in ((16, 16), (13, 22)):
        out = logits(model(torch.randn(2, in_channels, h, w)))
        assert out.shape == (2, num_classes, h, w)
        assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", MODELS.names())
def test_backward_reaches_every_parameter(name):
    torch.manual_seed(0)
    size = 44 if name == "unet_valid" else 16
    model = build_model(name, 1, 2, **SMALL)
    out = model(torch.randn(2, 1, size, size))
    loss = sum(o.square().mean() for o in out) if isinstance(out, list) else out.square().mean()
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert missing == []


def test_unet_valid_sizes_match_the_paper():
    assert valid_output_size(572, 4) == 388
    assert valid_output_size(570, 4) is None
    model = build_model("unet_valid", 1, 2, base_width=64)
    assert model.output_size((572, 572)) == (388, 388)
    assert model.margin(572) == 92
    assert 30_000_000 < count_parameters(model) < 32_000_000  # 31 M in the paper
    assert 572 in nearest_valid_sizes(570, 4)


def test_unet_valid_rejects_wrong_sizes_naming_valid_ones():
    model = build_model("unet_valid", 1, 2, **SMALL)
    with pytest.raises(ValueError, match="sides that work near it: .*44"):
        model(torch.randn(1, 1, 45, 45))
    assert logits(model(torch.randn(1, 1, 44, 44))).shape[-2:] == model.output_size((44, 44))


def test_unet_valid_output_is_centre_of_input():
    """Translating the input by the margin's worth must shift the output identically (no padding)."""
    torch.manual_seed(0)
    model = build_model("unet_valid", 1, 1, **SMALL).eval()
    x = torch.randn(1, 1, 60, 60)
    out_a = model(x[..., :44, :44])
    out_b = model(x[..., 4:48, 4:48])
    assert torch.allclose(out_a[..., 4:, 4:], out_b[..., :-4, :-4], atol=1e-5)


def test_unet_pp_deep_supervision():
    model = build_model("unet_pp", 1, 2, deep_supervision=True, **SMALL)
    heads = model(torch.randn(1, 1, 16, 16))
    assert isinstance(heads, list) and len(heads) == 2
    model.eval()
    with torch.no_grad():
        mean = model(torch.randn(1, 1, 16, 16))
    assert mean.shape == (1, 2, 16, 16)


def test_padding_is_transparent_for_same_models():
    """An input of another size is mirror-padded to a size the network takes and the logits are
    cropped back: exactly what the network gives for the padded input, on the input's pixels."""
    import torch.nn.functional as F

    torch.manual_seed(0)
    model = build_model("unet", 1, 2, **SMALL).eval()
    x = torch.randn(1, 1, 15, 13)
    with torch.no_grad():
        padded = F.pad(x, (0, 3, 0, 1), mode="reflect")  # 16 × 16
        full = model(padded)
        cropped = model(x)
    assert full.shape[-2:] == (16, 16) and cropped.shape[-2:] == (15, 13)
    torch.testing.assert_close(cropped, full[..., :15, :13])


def test_unet_options_change_the_network():
    base = count_parameters(build_model("unet", 1, 2))
    assert count_parameters(build_model("unet", 1, 2, base_width=32)) > 3 * base
    assert count_parameters(build_model("unet", 1, 2, depth=3)) < base
    bilinear = build_model("unet", 1, 2, up_mode="bilinear", **SMALL)
    assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in bilinear.modules())
    no_bn = build_model("unet", 1, 2, batch_norm=False, **SMALL)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in no_bn.modules())
    dropout = build_model("unet", 1, 2, dropout=0.5, **SMALL)
    assert any(isinstance(m, torch.nn.Dropout2d) for m in dropout.modules())


def test_segnet_uses_pooling_indices():
    model = build_model("segnet", 1, 2, **SMALL)
    assert any(isinstance(m, torch.nn.MaxUnpool2d) for m in model.modules())


def test_registry_errors_and_declared_params():
    assert available_models() == ["unet", "unet_valid", "unet_stride", "unet_dilate", "segnet", "unet_pp"]
    with pytest.raises(RegistryError, match="valid: unet, unet_valid"):
        build_model("resnet", 1, 2)
    with pytest.raises(RegistryError, match="depth"):
        build_model("unet", 1, 2, depth=12)
    with pytest.raises(RegistryError, match="no parameter width"):
        build_model("unet", 1, 2, width=3)
    with pytest.raises(ValueError, match="expects N×3×H×W"):
        build_model("unet", 3, 2, **SMALL)(torch.randn(1, 1, 16, 16))
    for name in available_models():
        entry = MODELS.get(name)
        assert entry.description and entry.params
        assert all(p.help for p in entry.params)


@pytest.mark.parametrize("depth", [1, 2, 3, 4, 5])
def test_a_side_below_the_smallest_valid_one_is_told_the_smallest(depth):
    """A 92 px patch for a depth-4 unet_valid said 'sides that work near it: ' with nothing after."""
    smallest = next(s for s in range(1, 4000) if valid_output_size(s, depth))
    assert nearest_valid_sizes(smallest - 1, depth)[0] == smallest
    assert len(nearest_valid_sizes(1, depth)) == 2
    model = build_model("unet_valid", 1, 2, depth=depth, base_width=4)
    with pytest.raises(ValueError, match=rf"sides that work near it: {smallest}, \d+$"):
        model.output_size((smallest - 1, smallest))
