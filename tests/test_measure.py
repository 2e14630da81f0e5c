"""The statistics behind "faster with confidence", on synthetic latencies with known truth."""

import numpy as np

from graphopt.core.measure import compare_samples, interleaved

RNG = np.random.default_rng(0)


def _noisy(base: float, n: int) -> np.ndarray:
    # Lognormal jitter plus occasional 3x outliers, like a shared machine.
    samples = base * RNG.lognormal(0.0, 0.05, n)
    samples[RNG.random(n) < 0.03] *= 3
    return samples


def test_planted_ten_percent_slowdown_is_detected():
    result = compare_samples(_noisy(1e-3, 200), _noisy(1.1e-3, 200))
    assert result.candidate_slower()
    assert 1.05 < result.ratio < 1.15


def test_identical_distributions_are_not_told_apart():
    verdicts = [compare_samples(_noisy(1e-3, 200), _noisy(1e-3, 200)) for _ in range(40)]
    false_alarms = sum(v.candidate_faster() or v.candidate_slower() for v in verdicts)
    assert false_alarms <= 4  # 95% intervals: about 2 of 40 expected


def test_interleaved_runs_both_callables_the_same_number_of_times():
    calls = {"a": 0, "b": 0}
    result = interleaved(
        lambda: calls.__setitem__("a", calls["a"] + 1),
        lambda: calls.__setitem__("b", calls["b"] + 1),
        min_rounds=10,
        max_rounds=10,
        warmup=2,
    )
    assert calls == {"a": 12, "b": 12}
    assert result.rounds == 10


def test_in_blocks_holds_one_compilation_at_a_time_and_recovers_a_planted_ratio():
    """Blocks A B B A: each side's compilation is let go before the next is made, and a candidate
    that sleeps twice as long comes out at a ratio near 2."""
    import time

    from graphopt.core.measure import in_blocks

    alive, most_alive, opened = [0], [0], []

    class Compilation:
        def __init__(self, seconds):
            self.seconds = seconds
            alive[0] += 1
            most_alive[0] = max(most_alive[0], alive[0])

        def __del__(self):
            alive[0] -= 1

    def opener(name, seconds):
        def open_side():
            opened.append(name)
            compilation = Compilation(seconds)
            return lambda: time.sleep(compilation.seconds)

        return open_side

    result = in_blocks(opener("A", 0.002), opener("B", 0.004), budget_s=0.4)
    assert opened == ["A", "B", "B", "A"]
    assert most_alive[0] == 1 and alive[0] == 0
    assert result.rounds >= 8 and 1.7 < result.ratio < 2.3


def test_blocks_that_disagree_widen_the_interval():
    """Two compilations of the same graph 5% apart (one A block slow, as a session's placement can
    make it): pooled runs give a narrow interval excluding 1; the block pairs' disagreement shows."""
    from graphopt.core.measure import compare_blocks, compare_samples

    rng = np.random.default_rng(0)
    noise = lambda level: list(level * (1 + 0.002 * rng.standard_normal(20)))  # noqa: E731
    pairs = [(noise(1.00), noise(1.05)), (noise(1.05), noise(1.05))]  # A/A: only the first A block is fast
    pooled = compare_samples([t for a, _ in pairs for t in a], [t for _, b in pairs for t in b])
    assert pooled.ci_low > 1.0  # the overconfident verdict: "B slower" of the same graph
    clustered = compare_blocks(pairs)
    assert clustered.ci_low <= 1.0 <= clustered.ci_high
    agreeing = compare_blocks([(noise(1.00), noise(1.05)), (noise(1.00), noise(1.05))])
    assert 1.04 < agreeing.ci_low and agreeing.ci_high < 1.06  # a real 5% gap stays clear
