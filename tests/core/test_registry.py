"""Tests for app.core.registry: Param validation and the Registry container."""

import math

import pytest

from app.core.registry import Param, Registry, RegistryError

NAN = float("nan")
INF = float("inf")


# ----------------------------------------------------------------------------- Param construction


def test_unknown_param_type_rejected():
    with pytest.raises(ValueError, match="unknown type"):
        Param("x", "complex", 0)


def test_to_dict_lists_everything():
    p = Param("mode", "choice", "a", choices=("a", "b"), help="pick one")
    assert p.to_dict() == {"name": "mode", "type": "choice", "default": "a", "minimum": None,
                           "maximum": None, "choices": ["a", "b"], "help": "pick one"}


# ----------------------------------------------------------------------------- float


def test_float_coerces_ints_to_float():
    p = Param("std", "float", 0.5, 0.0, 10.0)
    out = p.validate(3)
    assert out == 3.0 and type(out) is float


def test_float_accepts_bounds_inclusive():
    p = Param("std", "float", 0.5, 0.0, 1.0)
    assert p.validate(0.0) == 0.0
    assert p.validate(1.0) == 1.0


@pytest.mark.parametrize("value", [-0.001, 1.001, 100])
def test_float_out_of_range_names_param(value):
    p = Param("std", "float", 0.5, 0.0, 1.0)
    with pytest.raises(RegistryError, match=r"std .*outside the allowed range \[0\.0, 1\.0\]"):
        p.validate(value, "augmentation 'noise'")


def test_float_unbounded_accepts_anything_finite():
    p = Param("v", "float", 0.0)
    assert p.validate(-1e300) == -1e300
    assert p.validate(1e300) == 1e300


@pytest.mark.parametrize("value", [NAN, INF, -INF])
def test_float_rejects_non_finite(value):
    p = Param("std", "float", 0.5)
    with pytest.raises(RegistryError, match="std must be finite"):
        p.validate(value)


@pytest.mark.parametrize("value", [True, False, "0.5", None, [0.5], {"v": 1}])
def test_float_rejects_bool_and_non_numbers(value):
    p = Param("std", "float", 0.5, 0.0, 1.0)
    with pytest.raises(RegistryError, match="std must be a number"):
        p.validate(value)


def test_owner_is_prefixed_to_message():
    p = Param("std", "float", 0.5, 0.0, 1.0)
    with pytest.raises(RegistryError) as info:
        p.validate(5.0, "augmentation 'gaussian_noise'")
    assert str(info.value).startswith("augmentation 'gaussian_noise': std")


# ----------------------------------------------------------------------------- int


def test_int_coerces_whole_floats():
    p = Param("n", "int", 1, 0, 10)
    out = p.validate(4.0)
    assert out == 4 and type(out) is int


def test_int_keeps_ints():
    p = Param("n", "int", 1, 0, 10)
    out = p.validate(7)
    assert out == 7 and type(out) is int


def test_int_rejects_fractions():
    p = Param("n", "int", 1, 0, 10)
    with pytest.raises(RegistryError, match="n must be a whole number"):
        p.validate(2.5)


@pytest.mark.parametrize("value", [-1, 11])
def test_int_range(value):
    p = Param("n", "int", 1, 0, 10)
    with pytest.raises(RegistryError, match="n = .* is outside the allowed range"):
        p.validate(value)


@pytest.mark.parametrize("value", [True, False, "3", None])
def test_int_rejects_bool_and_non_numbers(value):
    p = Param("n", "int", 1, 0, 10)
    with pytest.raises(RegistryError, match="n must be a number"):
        p.validate(value)


@pytest.mark.parametrize("value", [NAN, INF, -INF])
def test_int_rejects_non_finite_with_registry_error(value):
    # JSON allows NaN / Infinity literals, so these can arrive from a pipeline file.
    p = Param("n", "int", 1, 0, 10)
    with pytest.raises(RegistryError, match=r"\bn\b"):
        p.validate(value, "augmentation 'pad'")


# ----------------------------------------------------------------------------- bool


def test_bool_accepts_bools_only():
    p = Param("on", "bool", False)
    assert p.validate(True) is True
    assert p.validate(False) is False


@pytest.mark.parametrize("value", [0, 1, "true", None, 1.0])
def test_bool_rejects_non_bools(value):
    p = Param("on", "bool", False)
    with pytest.raises(RegistryError, match="on must be true or false"):
        p.validate(value)


# ----------------------------------------------------------------------------- choice


def test_choice_accepts_listed():
    p = Param("border", "choice", "mirror", choices=("mirror", "constant"))
    assert p.validate("constant") == "constant"


@pytest.mark.parametrize("value", ["wrap", "", None, ["mirror"], 0])
def test_choice_rejects_others_and_lists_choices(value):
    p = Param("border", "choice", "mirror", choices=("mirror", "constant"))
    with pytest.raises(RegistryError, match="border = .* is not one of: mirror, constant"):
        p.validate(value)


# ----------------------------------------------------------------------------- float_range


def test_float_range_returns_float_tuple_from_list():
    p = Param("factor", "float_range", (0.9, 1.1), 0.25, 4.0)
    out = p.validate([1, 2])
    assert out == (1.0, 2.0) and type(out) is tuple
    assert all(type(v) is float for v in out)


def test_float_range_equal_ends_allowed():
    p = Param("factor", "float_range", (0.9, 1.1), 0.25, 4.0)
    assert p.validate((1.0, 1.0)) == (1.0, 1.0)


def test_float_range_low_above_high_rejected():
    p = Param("factor", "float_range", (0.9, 1.1), 0.25, 4.0)
    with pytest.raises(RegistryError, match=r"factor must be \[low, high\] with low <= high"):
        p.validate([2.0, 1.0])


@pytest.mark.parametrize("value", [[0.1, 1.0], [1.0, 4.5]])
def test_float_range_each_end_in_bounds(value):
    p = Param("factor", "float_range", (0.9, 1.1), 0.25, 4.0)
    with pytest.raises(RegistryError, match="factor .*outside the allowed range"):
        p.validate(value)


@pytest.mark.parametrize("value", [[NAN, 1.0], [1.0, NAN], [1.0, INF]])
def test_float_range_rejects_non_finite(value):
    p = Param("factor", "float_range", (0.9, 1.1), 0.25, 4.0)
    with pytest.raises(RegistryError, match="factor must be finite"):
        p.validate(value)


@pytest.mark.parametrize("value", [1.0, [1.0], [1.0, 2.0, 3.0], "ab", None, {1.0, 2.0}])
def test_float_range_needs_a_pair(value):
    p = Param("factor", "float_range", (0.9, 1.1), 0.25, 4.0)
    with pytest.raises(RegistryError, match=r"factor must be a pair \[a, b\]"):
        p.validate(value)


def test_float_range_rejects_bool_members():
    p = Param("factor", "float_range", (0.9, 1.1), 0.0, 4.0)
    with pytest.raises(RegistryError, match="factor must be a number"):
        p.validate([True, 2.0])


# ----------------------------------------------------------------------------- int_pair


def test_int_pair_coerces_and_returns_tuple():
    p = Param("size", "int_pair", (256, 256), 1, 16384)
    out = p.validate([32.0, 48])
    assert out == (32, 48) and type(out) is tuple
    assert all(type(v) is int for v in out)


def test_int_pair_order_is_free():
    # (height, width), not a range: a > b is allowed.
    p = Param("size", "int_pair", (256, 256), 1, 16384)
    assert p.validate([64, 8]) == (64, 8)


@pytest.mark.parametrize("value", [[0, 5], [5, 16385]])
def test_int_pair_bounds(value):
    p = Param("size", "int_pair", (256, 256), 1, 16384)
    with pytest.raises(RegistryError, match="size = .* is outside the allowed range"):
        p.validate(value)


@pytest.mark.parametrize("value", [[1.5, 2], [2, "3"], [True, 4]])
def test_int_pair_rejects_bad_members(value):
    p = Param("size", "int_pair", (256, 256), 1, 16384)
    with pytest.raises(RegistryError, match="size must be"):
        p.validate(value)


def test_int_pair_needs_a_pair():
    p = Param("size", "int_pair", (256, 256), 1, 16384)
    with pytest.raises(RegistryError, match=r"size must be a pair"):
        p.validate(32)


# ----------------------------------------------------------------------------- Registry


def _registry() -> Registry:
    reg = Registry("widget")
    reg.add("alpha", dict, [Param("size", "int", 3, 1, 9), Param("mode", "choice", "x", choices=("x", "y"))],
            "first", kind="k1")
    reg.add("beta", list)
    return reg


def test_add_returns_factory_and_records_entry():
    reg = Registry("widget")
    assert reg.add("a", dict, [Param("n", "int", 1)], "desc", colour="red") is dict
    entry = reg.get("a")
    assert entry.name == "a" and entry.factory is dict and entry.description == "desc"
    assert [p.name for p in entry.params] == ["n"]
    assert entry.meta == {"colour": "red"}
    assert entry.defaults() == {"n": 1}
    assert "a" in reg and "b" not in reg
    assert reg.names() == ["a"]


def test_add_twice_raises():
    reg = _registry()
    with pytest.raises(ValueError, match="widget 'alpha' is registered twice"):
        reg.add("alpha", set)
    assert reg.get("alpha").factory is dict  # the first stays


def test_names_keep_registration_order():
    assert _registry().names() == ["alpha", "beta"]


def test_get_unknown_lists_valid_names():
    with pytest.raises(RegistryError, match="unknown widget 'gamma'; valid: alpha, beta"):
        _registry().get("gamma")


def test_get_unhashable_name_is_registry_error():
    with pytest.raises(RegistryError, match="unknown widget"):
        _registry().get(["alpha"])


def test_contains_with_non_string():
    reg = _registry()
    assert 3 not in reg


def test_resolve_fills_defaults():
    reg = _registry()
    assert reg.resolve("alpha") == {"size": 3, "mode": "x"}
    assert reg.resolve("alpha", {}) == {"size": 3, "mode": "x"}
    assert reg.resolve("beta") == {}


def test_resolve_overlays_and_coerces():
    out = _registry().resolve("alpha", {"size": 5.0})
    assert out == {"size": 5, "mode": "x"} and type(out["size"]) is int


def test_resolve_does_not_mutate_entry_defaults():
    reg = _registry()
    reg.resolve("alpha", {"size": 7})
    assert reg.get("alpha").defaults() == {"size": 3, "mode": "x"}


def test_resolve_validates_with_owner():
    with pytest.raises(RegistryError, match="widget 'alpha': size = 99 is outside"):
        _registry().resolve("alpha", {"size": 99})


def test_resolve_unknown_param_names_it_and_lists_valid():
    with pytest.raises(RegistryError, match="widget 'alpha' has no parameter colour, shape; valid: size, mode"):
        _registry().resolve("alpha", {"shape": 1, "colour": 2, "size": 4})


def test_resolve_unknown_param_on_entry_without_params():
    with pytest.raises(RegistryError, match="has no parameter x; valid: none"):
        _registry().resolve("beta", {"x": 1})


def test_resolve_unknown_entry():
    with pytest.raises(RegistryError, match="unknown widget 'nope'"):
        _registry().resolve("nope")


def test_decorator_form():
    reg = Registry("model")

    @reg.register("tiny", [Param("depth", "int", 2, 1, 5)], "a tiny model", family="unet")
    def build(depth):
        return ("tiny", depth)

    assert build(3) == ("tiny", 3)  # decorator returns the function itself
    entry = reg.get("tiny")
    assert entry.factory is build
    assert entry.description == "a tiny model" and entry.meta == {"family": "unet"}
    assert reg.resolve("tiny", {"depth": 4}) == {"depth": 4}
    with pytest.raises(ValueError, match="registered twice"):
        reg.register("tiny")(lambda: None)


def test_defaults_are_validated_values_for_declared_params():
    # sanity: every default of a well-formed registry passes its own validation
    reg = _registry()
    for p in reg.get("alpha").params:
        assert p.validate(p.default) == p.default
    assert math.isclose(Param("f", "float", 0.1, 0.0, 1.0).validate(0.1), 0.1)
