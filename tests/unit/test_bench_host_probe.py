"""bench.stall_episodes: how the host CPU probe's samples become stall episodes."""

from __future__ import annotations

from bench import host_stall_probe, stall_episodes


def _steady(count: int, start: float = 0.0) -> list[tuple[float, float]]:
    """Probes every 2.5 ms, each taking 0.5 ms."""
    return [(start + i * 0.0025, 0.0005) for i in range(count)]


def test_a_steady_host_has_no_stall_episode() -> None:
    summary = stall_episodes(_steady(400), 1.0)
    assert summary == {"seconds": 1.0, "probes": 400, "median_us": 500, "stall_episodes": 0,
                       "longest_stall_ms": 0.0, "worst_slowdown": 1.0, "stalled_share_pct": 0.0}


def test_slow_probes_close_together_make_one_episode_and_a_lone_one_is_noise() -> None:
    samples = _steady(400)
    # an episode: four probes 10x and 6x slower, back to back from t=0.5 s (20 ms in all)
    samples[200:204] = [(0.5, 0.005), (0.505, 0.003), (0.508, 0.005), (0.513, 0.007)]
    samples[300] = (0.75, 0.005)  # a single slow probe: not an episode
    summary = stall_episodes(sorted(samples), 1.0)
    assert summary["stall_episodes"] == 1
    assert summary["worst_slowdown"] == 14.0
    assert summary["longest_stall_ms"] == 20.0
    assert summary["stalled_share_pct"] == 2.0


def test_episodes_further_apart_than_the_gap_are_counted_apart() -> None:
    samples = _steady(800)
    for first in (100, 500):  # 1 s apart
        for k in range(3):
            at = samples[first + k][0]
            samples[first + k] = (at, 0.004)
    assert stall_episodes(samples, 2.0)["stall_episodes"] == 2


def test_the_probe_runs_for_the_time_asked_and_summarises_it() -> None:
    summary = host_stall_probe(0.2)
    assert summary["seconds"] == 0.2 and summary["probes"] > 10
    assert summary["median_us"] > 0 and summary["stall_episodes"] >= 0
