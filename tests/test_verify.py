import numpy as np

from graphopt.core.verify import compare

RNG = np.random.default_rng(0)


def test_float32_rounding_noise_passes():
    ref = RNG.standard_normal(1000).astype(np.float32)
    noisy = ref + ref * np.float32(2e-6)  # ~16 ulp, what reassociation produces
    assert compare(["y"], [ref], [noisy]).ok


def test_dropped_bias_sized_error_fails_in_float32():
    ref = RNG.standard_normal(1000).astype(np.float32)
    result = compare(["y"], [ref], [ref + np.float32(1e-3)])
    assert not result.ok
    assert result.first_failure().name == "y"


def test_float16_tolerance_is_looser_than_float32_but_catches_real_errors():
    ref = RNG.standard_normal(1000).astype(np.float16)
    one_ulp = np.nextafter(ref, np.float16(np.inf))
    assert compare(["y"], [ref], [one_ulp]).ok
    assert not compare(["y"], [ref], [(ref + np.float16(0.05)).astype(np.float16)]).ok


def test_nan_and_inf_positions_must_match():
    ref = np.array([1.0, np.nan, np.inf, -np.inf], np.float32)
    assert compare(["y"], [ref], [ref.copy()]).ok
    assert not compare(["y"], [ref], [np.array([1.0, 0.0, np.inf, -np.inf], np.float32)]).ok
    assert not compare(["y"], [ref], [np.array([1.0, np.nan, -np.inf, -np.inf], np.float32)]).ok


def test_integers_must_match_exactly_and_shapes_too():
    ref = np.arange(6, dtype=np.int64)
    assert not compare(["y"], [ref], [ref + np.array([0, 0, 0, 0, 0, 1])]).ok
    assert not compare(["y"], [ref], [ref.reshape(2, 3)]).ok


def test_large_outputs_are_judged_relative_to_their_scale():
    logits = RNG.standard_normal(1000).astype(np.float32) * 300
    assert compare(["logits"], [logits], [logits + np.float32(1e-3)]).ok
