import pytest

from lsst.ts.calibscripts.calibrations.image_plan import ImagePlan, expand_exposure_times, flat_pairs
from lsst.ts.calibscripts.script import ConfigError


def test_exposure_times_scalar_and_lengths() -> None:
    assert expand_exposure_times(5, 3, 1, "x") == [5.0] * 4
    # n values: the discarded image reuses the first.
    assert expand_exposure_times([5, 10, 15], 3, 1, "x") == [5.0, 5.0, 10.0, 15.0]
    # n + n_discard values: used as given.
    assert expand_exposure_times([1, 5, 10, 15], 3, 1, "x") == [1.0, 5.0, 10.0, 15.0]
    with pytest.raises(
        ConfigError, match=r"exp_times_dark has 2 values; it must have 3 \(n\) or 4 \(n \+ n_discard\)"
    ):
        expand_exposure_times([1, 2], 3, 1, "exp_times_dark")
    with pytest.raises(ConfigError, match="it must have 3 values"):
        expand_exposure_times([1, 2], 3, 0, "exp_times_dark")


def test_default_dark_times_cover_n_plus_discard() -> None:
    default = [5, 5, 5, 5, 5, 15, 15] + [30] * 16
    times = expand_exposure_times(default, 22, 1, "exp_times_dark")
    plan = ImagePlan("DARK", 22, 1, tuple(times))
    assert plan.n_total == 23
    assert plan.kept_exposure_times == tuple([5.0] * 4 + [15.0] * 2 + [30.0] * 16)


def test_flat_pairs() -> None:
    assert flat_pairs([1, 1, 2, 3, 3]) == [(0, 1), (3, 4)]
    assert flat_pairs([0.1, 0.1, 0.35, 0.35]) == [(0, 1), (2, 3)]
    assert flat_pairs([5, 5, 5]) == [(0, 1)]
    assert flat_pairs([5, 10, 15]) == []
