import numpy as np
import pytest

from models.eval_metrics import RankingMetric

# ranks of four purchases: full-catalog rank, rank among the 100 sampled products
RANKS = np.array([[0, 0], [4, 0], [12, 3], [99, 7]], np.float32)


@pytest.mark.parametrize("kind, k, expected", [
    ("recall", 10, 2 / 4),
    ("recall", 100, 4 / 4),
    ("ndcg", 10, (1 + 1 / np.log2(6)) / 4),
    ("mrr", 0, (1 + 1 / 5 + 1 / 13 + 1 / 100) / 4),
    ("sampled_accuracy", 0, 2 / 4),
])
def test_values(kind, k, expected):
    metric = RankingMetric(kind, k)
    metric.update_state(np.zeros([4, 1]), RANKS)
    assert float(metric.result()) == pytest.approx(expected, rel=1e-6)


def test_rebuilt_from_config_as_tfma_does():
    metric = RankingMetric("ndcg", 10)
    clone = RankingMetric.from_config(metric.get_config())
    assert (clone.name, clone.kind, clone.k) == ("ndcg_at_10", "ndcg", 10)


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="kind must be one of"):
        RankingMetric("precision", 10)
