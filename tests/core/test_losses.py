"""Tests for app.core.losses: hand-checked values, limiting cases, gradients, weights, MONAI, registry."""

import inspect
import math

import pytest
import torch
import torch.nn.functional as F

from app.core.losses import LOSSES, available_losses, build_loss
from app.core.registry import RegistryError

# One image, two pixels: pixel 0 has logits (0, 1) and class 1; pixel 1 has (2, -1) and class 0.
LOGITS2 = torch.tensor([[[[0.0, 2.0]], [[1.0, -1.0]]]])
TARGET2 = torch.tensor([[[1, 0]]])


def sig(x):
    return 1 / (1 + math.exp(-x))


def softmax(row):
    e = [math.exp(v) for v in row]
    return [v / sum(e) for v in e]


def num(x):
    return x.detach().item() if isinstance(x, torch.Tensor) else float(x)


def close(a, b, tol=1e-6):
    return abs(num(a) - num(b)) <= tol * max(1.0, abs(num(b)))


def channels(name):
    return (1, 2) if name == "bce" else (1, 2, 3)


def sample(c, n=2, h=4, w=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, c, h, w, generator=g) * 2
    target = torch.randint(0, max(c, 2), (n, h, w), generator=g)
    weight = torch.rand(n, h, w, generator=g) + 0.5
    return logits, target, weight


def call(name, logits, target, weight=None, **params):
    if name == "weighted_ce" and weight is None:
        weight = torch.ones_like(target, dtype=torch.float32)
    return build_loss(name, **params)(logits, target, weight)


# ----------------------------------------------------------------------------- hand-checked values


def test_ce_by_hand():
    ce0, ce1 = math.log(1 + math.exp(-1)), math.log(1 + math.exp(-3))
    assert close(build_loss("ce")(LOGITS2, TARGET2), (ce0 + ce1) / 2)
    weight = torch.tensor([[[1.0, 3.0]]])
    assert close(build_loss("ce")(LOGITS2, TARGET2, weight), (ce0 + 3 * ce1) / 4)


def test_ce_balanced_by_hand():
    logits = torch.tensor([[[[0.0, 2.0, 0.5]], [[1.0, -1.0, 0.0]]]])
    target = torch.tensor([[[1, 0, 0]]])
    ce = [math.log(1 + math.exp(-1)), math.log(1 + math.exp(-3)), math.log(1 + math.exp(-0.5))]
    cw = [2 / 3, 4 / 3]  # inverse frequency (2 background, 1 foreground pixel), mean 1
    expected = (cw[1] * ce[0] + cw[0] * ce[1] + cw[0] * ce[2]) / (cw[1] + 2 * cw[0])
    assert close(build_loss("ce", class_weights="balanced")(logits, target), expected)
    # an explicit list through the constructor gives the same
    from app.core.losses.ce import CrossEntropyLoss
    assert close(CrossEntropyLoss([2 / 3, 4 / 3])(logits, target), expected)


def test_weighted_ce_by_hand():
    logits = torch.tensor([[[[0.0, 2.0, 0.5]], [[1.0, -1.0, 0.0]]]])
    target = torch.tensor([[[1, 0, 0]]])
    weight = torch.tensor([[[2.0, 0.0, 1.0]]])
    ce0, ce2 = math.log(1 + math.exp(-1)), math.log(1 + math.exp(-0.5))
    assert close(build_loss("weighted_ce")(logits, target, weight), (2 * ce0 + ce2) / 3)
    assert close(build_loss("weighted_ce", normalise="pixels")(logits, target, weight), (2 * ce0 + ce2) / 2)


def test_weighted_ce_requires_weight():
    with pytest.raises(ValueError, match="weight map"):
        build_loss("weighted_ce")(LOGITS2, TARGET2)


def test_bce_by_hand():
    logits = torch.tensor([[[[0.5, -2.0]]]])
    expected = (3 * math.log(1 + math.exp(-0.5)) + math.log(1 + math.exp(-2))) / 2
    assert close(build_loss("bce", pos_weight=3.0)(logits, TARGET2), expected)


def _overlap_terms(s):
    """Per-class (tp, fp, fn) for LOGITS2/TARGET2 by hand."""
    p = [softmax([0.0, 1.0]), softmax([2.0, -1.0])]  # per pixel, per class
    g = [[0, 1], [1, 0]]
    terms = []
    for c in range(2):
        tp = sum(p[i][c] * g[i][c] for i in range(2))
        fp = sum(p[i][c] * (1 - g[i][c]) for i in range(2))
        fn = sum((1 - p[i][c]) * g[i][c] for i in range(2))
        terms.append((tp, fp, fn))
    return terms


def test_dice_and_jaccard_by_hand():
    s = 0.1
    terms = _overlap_terms(s)
    dice = [1 - (2 * tp + s) / (2 * tp + fp + fn + s) for tp, fp, fn in terms]
    jac = [1 - (tp + s) / (tp + fp + fn + s) for tp, fp, fn in terms]
    assert close(build_loss("dice", smooth=s)(LOGITS2, TARGET2), sum(dice) / 2)
    assert close(build_loss("dice", smooth=s, include_background=False)(LOGITS2, TARGET2), dice[1])
    assert close(build_loss("jaccard", smooth=s)(LOGITS2, TARGET2), sum(jac) / 2)


def test_tversky_and_focal_tversky_by_hand():
    s, a, b = 0.1, 0.3, 0.7
    sp = s * (a + b) / 2
    tl = [1 - (tp + sp) / (tp + a * fp + b * fn + sp) for tp, fp, fn in _overlap_terms(s)]
    assert close(build_loss("tversky", alpha=a, beta=b, smooth=s)(LOGITS2, TARGET2), sum(tl) / 2)
    ftl = build_loss("focal_tversky", alpha=a, beta=b, smooth=s, gamma=0.75)(LOGITS2, TARGET2)
    assert close(ftl, sum(v ** 0.75 for v in tl) / 2)


def test_dice_inverse_frequency_by_hand():
    logits = torch.tensor([[[[0.0, 2.0, 0.5]], [[1.0, -1.0, 0.0]], [[0.5, 0.0, -1.0]]]])
    target = torch.tensor([[[1, 0, 0]]])  # class 2 absent
    p = [softmax([0.0, 1.0, 0.5]), softmax([2.0, -1.0, 0.0]), softmax([0.5, 0.0, -1.0])]
    t = [1, 0, 0]
    s = 1e-5
    losses = []
    for c in range(3):
        tp = sum(p[i][c] for i in range(3) if t[i] == c)
        sp, sg = sum(p[i][c] for i in range(3)), sum(t[i] == c for i in range(3))
        losses.append(1 - (2 * tp + s) / (sp + sg + s))
    w = [0.5, 1.0, 1.0]  # 1/count; absent class gets the largest
    w = [v / (sum(w) / 3) for v in w]
    expected = sum(wc * lc for wc, lc in zip(w, losses)) / 3
    assert close(build_loss("dice", class_weighting="inverse_frequency")(logits, target), expected)


def test_focal_by_hand():
    logits = torch.tensor([[[[0.5, -2.0]]]])  # C == 1, targets (1, 0)
    g, a = 2.0, 0.25
    pt = [sig(0.5), sig(2.0)]
    fl = [-a * (1 - pt[0]) ** g * math.log(pt[0]), -(1 - a) * (1 - pt[1]) ** g * math.log(pt[1])]
    assert close(build_loss("focal", gamma=g, alpha=a)(logits, TARGET2), sum(fl) / 2)
    # softmax, three classes: alpha_t = 1 - a for class 0, a otherwise
    logits3 = torch.tensor([[[[1.0, 0.0]], [[2.0, 1.0]], [[0.5, -1.0]]]])
    target3 = torch.tensor([[[2, 0]]])
    p0, p1 = softmax([1.0, 2.0, 0.5])[2], softmax([0.0, 1.0, -1.0])[0]
    fl3 = [-a * (1 - p0) ** g * math.log(p0), -(1 - a) * (1 - p1) ** g * math.log(p1)]
    assert close(build_loss("focal", gamma=g, alpha=a)(logits3, target3), sum(fl3) / 2)


def test_dice_ce_by_hand():
    s = 0.1
    dice = sum(1 - (2 * tp + s) / (2 * tp + fp + fn + s) for tp, fp, fn in _overlap_terms(s)) / 2
    ce = (math.log(1 + math.exp(-1)) + math.log(1 + math.exp(-3))) / 2
    loss = build_loss("dice_ce", smooth=s, lambda_dice=0.3, lambda_ce=2.0)(LOGITS2, TARGET2)
    assert close(loss, 0.3 * dice + 2.0 * ce)


# ----------------------------------------------------------------------------- limiting cases


@pytest.mark.parametrize("use_weight", [False, True])
def test_bce_equals_two_class_ce(use_weight):
    logits, target, weight = sample(2)
    weight = weight if use_weight else None
    assert close(build_loss("bce")(logits, target, weight), build_loss("ce")(logits, target, weight))
    fg = logits[:, 1:] - logits[:, :1]
    assert close(build_loss("bce")(fg, target, weight), build_loss("ce")(logits, target, weight))
    assert close(build_loss("ce")(fg, target), F.binary_cross_entropy_with_logits(fg[:, 0], target.float()))


def test_bce_rejects_more_than_two_channels():
    logits, target, _ = sample(3)
    with pytest.raises(ValueError, match="1 or 2 logit channels"):
        build_loss("bce")(logits, target)


@pytest.mark.parametrize("c", [1, 2, 3])
def test_focal_gamma0_no_alpha_is_ce(c):
    logits, target, weight = sample(c)
    focal = build_loss("focal", gamma=0.0, use_alpha=False)
    assert close(focal(logits, target, weight), build_loss("ce")(logits, target, weight))
    if c < 3:
        assert close(focal(logits, target), build_loss("bce")(logits, target))


def test_focal_two_channels_equals_sigmoid_on_difference():
    logits, target, weight = sample(2)
    focal = build_loss("focal", gamma=1.5, alpha=0.3)
    assert close(focal(logits, target, weight), focal(logits[:, 1:] - logits[:, :1], target, weight))


@pytest.mark.parametrize("c", [1, 2, 3])
@pytest.mark.parametrize("opts", [{}, {"batch": True}, {"include_background": False},
                                  {"class_weighting": "inverse_frequency", "smooth": 0.5}])
def test_tversky_limits(c, opts):
    logits, target, weight = sample(c)
    for w in (None, weight):
        dice = build_loss("dice", **opts)(logits, target, w)
        jac = build_loss("jaccard", **opts)(logits, target, w)
        tv = build_loss("tversky", **opts)(logits, target, w)
        assert close(tv, dice)
        assert close(build_loss("tversky", alpha=1.0, beta=1.0, **opts)(logits, target, w), jac)
        assert close(build_loss("focal_tversky", gamma=1.0, **opts)(logits, target, w), tv)
        alpha_beta = {"alpha": 0.2, "beta": 0.8}
        assert close(build_loss("focal_tversky", gamma=1.0, **alpha_beta, **opts)(logits, target, w),
                     build_loss("tversky", **alpha_beta, **opts)(logits, target, w))


@pytest.mark.parametrize("c", [1, 3])
def test_dice_ce_lambdas(c):
    logits, target, weight = sample(c)
    assert close(build_loss("dice_ce", lambda_ce=0.0)(logits, target, weight),
                 build_loss("dice")(logits, target, weight))
    assert close(build_loss("dice_ce", lambda_dice=0.0)(logits, target, weight),
                 build_loss("ce")(logits, target, weight))


def test_dice_perfect_empty_is_zero():
    target = torch.zeros(1, 3, 3, dtype=torch.long)
    assert float(build_loss("dice")(torch.full((1, 1, 3, 3), -1e4), target)) < 1e-6
    logits = torch.zeros(1, 2, 3, 3)
    logits[:, 0] = 1e4
    assert float(build_loss("dice")(logits, target)) < 1e-6


# ----------------------------------------------------------------------------- gradients and stability


def _cases(c):
    """(label, logits, target, gradient must be non-zero) at the extremes."""
    g = torch.Generator().manual_seed(1)
    k = max(c, 2)
    target = torch.randint(0, k, (2, 4, 4), generator=g)
    target[:, 0, 0] = 1
    empty = torch.zeros_like(target)

    def confident(t, scale):
        if c == 1:
            return (2 * t.float() - 1).unsqueeze(1) * scale
        return F.one_hot(t, c).movedim(-1, 1).float() * scale

    return [
        ("perfect", confident(target, 1e4), target, False),
        ("perfect_moderate", confident(target, 30.0), target, False),
        ("empty_prediction", confident(empty, 10.0), target, True),
        ("empty_target", torch.randn(2, c, 4, 4, generator=g), empty, True),
        ("empty_both", confident(empty, 1e4), empty, False),
    ]


@pytest.mark.parametrize("name", available_losses())
def test_gradients_finite_at_extremes(name):
    for c in channels(name):
        for label, logits, target, nonzero in _cases(c):
            logits = logits.clone().requires_grad_(True)
            loss = call(name, logits, target)
            loss.backward()
            assert torch.isfinite(loss), (name, c, label)
            assert torch.isfinite(logits.grad).all(), (name, c, label)
            if nonzero:
                assert logits.grad.abs().sum() > 0, (name, c, label)
            if label.startswith("perfect") or label == "empty_both":
                assert num(loss) < 1e-3, (name, c, label, num(loss))


@pytest.mark.parametrize("name", available_losses())
def test_zero_weight_pixels_have_no_influence(name):
    for c in channels(name):
        logits, target, weight = sample(c, seed=3)
        weight[:, :2] = 0
        changed = logits.clone()
        changed[:, :, :2] = torch.randn_like(changed[:, :, :2]) * 5
        logits.requires_grad_(True)
        a = call(name, logits, target, weight)
        b = call(name, changed, target, weight)
        assert close(a, b, 1e-6), (name, c)
        a.backward()
        assert logits.grad[:, :, :2].abs().max() == 0, (name, c)
        assert logits.grad[:, :, 2:].abs().max() > 0, (name, c)


@pytest.mark.parametrize("name", available_losses())
def test_autocast_computes_in_float32(name):
    logits, target, weight = sample(2)
    low = logits.bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = call(name, low, target, weight)
    assert loss.dtype == torch.float32
    assert close(loss, call(name, low.float(), target, weight), 1e-6)


def test_bad_inputs_rejected():
    logits, target, _ = sample(2)
    with pytest.raises(ValueError, match="target must be"):
        build_loss("dice")(logits, target[:, :2])
    with pytest.raises(ValueError, match="class indices 0..1"):
        build_loss("dice")(logits, target + 2)
    with pytest.raises(ValueError, match="integer class indices"):
        build_loss("ce")(logits, target.float())


# ----------------------------------------------------------------------------- MONAI agreement


def monai_losses():
    """MONAI is a test dependency: a missing install fails these tests rather than skipping them."""
    import monai.losses
    return monai.losses


def onehot_args(c):
    return {"sigmoid": True} if c == 1 else {"softmax": True, "to_onehot_y": True}


@pytest.mark.parametrize("c", [1, 2, 3])
@pytest.mark.parametrize("include_background", [True, False])
@pytest.mark.parametrize("batch", [False, True])
def test_dice_matches_monai(c, include_background, batch):
    ml = monai_losses()
    logits, target, _ = sample(c)
    inc = include_background or c == 1
    s = 1e-3
    ref = ml.DiceLoss(include_background=inc, batch=batch, smooth_nr=s, smooth_dr=s, **onehot_args(c))
    ours = build_loss("dice", smooth=s, include_background=include_background, batch=batch)
    assert close(ours(logits, target), ref(logits, target.unsqueeze(1)), 1e-5)
    ref_j = ml.DiceLoss(include_background=inc, batch=batch, smooth_nr=2 * s, smooth_dr=2 * s, jaccard=True,
                        **onehot_args(c))
    jac = build_loss("jaccard", smooth=s, include_background=include_background, batch=batch)
    assert close(jac(logits, target), ref_j(logits, target.unsqueeze(1)), 1e-5)


@pytest.mark.parametrize("c", [1, 3])
@pytest.mark.parametrize("alpha,beta", [(0.3, 0.7), (0.5, 0.5), (1.0, 0.2)])
@pytest.mark.parametrize("batch", [False, True])
def test_tversky_matches_monai(c, alpha, beta, batch):
    ml = monai_losses()
    logits, target, _ = sample(c)
    s = 1e-3
    sp = s * (alpha + beta) / 2
    ref = ml.TverskyLoss(alpha=alpha, beta=beta, batch=batch, smooth_nr=sp, smooth_dr=sp, **onehot_args(c))
    ours = build_loss("tversky", alpha=alpha, beta=beta, smooth=s, batch=batch)
    assert close(ours(logits, target), ref(logits, target.unsqueeze(1)), 1e-5)


@pytest.mark.parametrize("c", [1, 2, 3])
@pytest.mark.parametrize("gamma,alpha", [(2.0, 0.25), (0.5, None), (0.0, 0.6)])
def test_focal_matches_monai(c, gamma, alpha):
    ml = monai_losses()
    logits, target, _ = sample(c)
    ours = build_loss("focal", gamma=gamma, alpha=alpha or 0.25, use_alpha=alpha is not None)
    if c == 1:
        ref = ml.FocalLoss(gamma=gamma, alpha=alpha, use_softmax=False)
        expected = ref(logits, target.unsqueeze(1).float())
    else:  # MONAI's mean also runs over the C one-hot channels, C − 1 of them zero per pixel
        ref = ml.FocalLoss(gamma=gamma, alpha=alpha, use_softmax=True, to_onehot_y=True)
        expected = ref(logits, target.unsqueeze(1)) * c
    assert close(ours(logits, target), expected, 1e-5)


@pytest.mark.parametrize("c", [1, 2, 3])
@pytest.mark.parametrize("include_background", [True, False])
def test_dice_ce_matches_monai(c, include_background):
    ml = monai_losses()
    logits, target, _ = sample(c)
    inc = include_background or c == 1
    ref = ml.DiceCELoss(include_background=inc, lambda_dice=0.7, lambda_ce=1.3, **onehot_args(c))
    ours = build_loss("dice_ce", include_background=include_background, lambda_dice=0.7, lambda_ce=1.3)
    tgt = target.unsqueeze(1).float() if c == 1 else target.unsqueeze(1)
    assert close(ours(logits, target), ref(logits, tgt), 1e-5)


# ----------------------------------------------------------------------------- registry


def test_expected_names():
    assert set(available_losses()) == {"ce", "weighted_ce", "bce", "dice", "jaccard", "focal", "tversky",
                                       "focal_tversky", "dice_ce"}


@pytest.mark.parametrize("name", available_losses())
def test_every_loss_builds_with_defaults(name):
    for c in channels(name):
        logits, target, weight = sample(c)
        loss = build_loss(name)(logits, target, weight)
        assert loss.dim() == 0 and loss.dtype == torch.float32 and torch.isfinite(loss), (name, c)
        if name != "weighted_ce":
            assert torch.isfinite(build_loss(name)(logits, target)), (name, c)


@pytest.mark.parametrize("name", available_losses())
def test_entry_metadata_and_params_match_constructor(name):
    entry = LOSSES.get(name)
    assert entry.description.strip() and isinstance(entry.meta.get("formula"), str) and entry.meta["formula"]
    signature = inspect.signature(entry.load().__init__).parameters
    ctor = {k: v.default for k, v in signature.items() if k != "self"}
    assert ctor == entry.defaults()
    for p in entry.params:
        assert p.help and (p.type in ("bool", "choice") or (p.minimum is not None and p.maximum is not None))


def test_unknown_name_lists_valid_ones():
    with pytest.raises(RegistryError, match="dice_ce") as info:
        build_loss("dicee")
    assert all(name in str(info.value) for name in available_losses())


@pytest.mark.parametrize("name,params,bad", [
    ("focal", {"gamma": -1.0}, "gamma"),
    ("dice", {"smooth": 0.0}, "smooth"),
    ("ce", {"class_weights": "inverse"}, "class_weights"),
    ("tversky", {"alpha": 1.5}, "alpha"),
    ("dice_ce", {"lambda_ce": "one"}, "lambda_ce"),
    ("bce", {"gamma": 2.0}, "gamma"),
    ("tversky", {"alpha": 0.0, "beta": 0.0}, "alpha"),
])
def test_bad_param_rejected_with_its_name(name, params, bad):
    with pytest.raises(RegistryError, match=bad):
        build_loss(name, **params)
