"""The learned ranking: LightGBM's lambdarank over pool entries, one query per graph.

Each graph's entries are ranked by the gain they give when a run keeps them (1 - ratio, 0 for an
entry that is rejected), graded in 1% steps. Gradient-boosted trees first, as the issue asks:
small, fast to evaluate on a few dozen entries, and their per-feature contributions (SHAP values,
``pred_contrib``) say which features drove a choice.

The weights file is JSON: format version, the graphopt and LightGBM versions that wrote it, the
feature schema digest (a policy trained on another rule registry is refused), the digest of the
training set, which architectures were held out, the training settings, and LightGBM's own
model text.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path

import numpy as np

from graphopt.core.atomic import atomic_path

FORMAT = "graphopt-policy/1"
GAIN_STEP = 0.01  # one relevance grade per 1% of time saved
MAX_GRADE = 30  # LightGBM's default label_gain covers grades 0..30
PARAMS = {
    "objective": "lambdarank",
    "metric": "ndcg",
    "ndcg_eval_at": [1, 3],
    "learning_rate": 0.05,
    "num_leaves": 15,
    "min_data_in_leaf": 5,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambdarank_truncation_level": 10,
    "deterministic": True,
    "force_row_wise": True,
    "num_threads": 1,
    "verbose": -1,
}
ROUNDS = 200


def grades(ratios) -> np.ndarray:
    """Relevance grades from label ratios: 0 for no gain, one per GAIN_STEP saved."""
    gains = np.clip(1.0 - np.asarray(ratios, dtype=float), 0.0, None)
    return np.minimum(np.round(gains / GAIN_STEP), MAX_GRADE).astype(int)


@dataclasses.dataclass
class Ranker:
    booster: object  # lightgbm.Booster
    feature_names: list[str]
    feature_schema: str
    training_set: str = ""
    held_out: tuple[str, ...] = ()
    trained: str = ""

    def scores(self, rows) -> np.ndarray:
        return np.asarray(self.booster.predict(np.asarray(rows, dtype=np.float32)), dtype=float)

    def drivers(self, row, top: int = 3) -> list[tuple[str, float]]:
        """The features this entry has (not zero) that moved its score most (SHAP contributions),
        strongest first: what the graph and the candidate hold, not what they lack."""
        contributions = self.booster.predict(np.asarray([row], dtype=np.float32), pred_contrib=True)[0][:-1]
        present = [i for i in np.argsort(-np.abs(contributions)) if row[i] != 0 and contributions[i] != 0]
        return [(self.feature_names[i], float(contributions[i])) for i in present[:top]]

    def save(self, path) -> None:
        document = {
            "format": FORMAT,
            "graphopt": _graphopt_version(),
            "lightgbm": _lightgbm_version(),
            "feature_schema": self.feature_schema,
            "training_set": self.training_set,
            "held_out": list(self.held_out),
            "trained": self.trained,
            "params": PARAMS,
            "rounds": ROUNDS,
            "feature_names": self.feature_names,
            "model": self.booster.model_to_string(),
        }
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(document))

    @classmethod
    def load(cls, path) -> Ranker:
        import lightgbm

        document = json.loads(Path(path).read_text())
        if document.get("format") != FORMAT:
            raise ValueError(f"{path}: not a {FORMAT} weights file")
        booster = lightgbm.Booster(model_str=document["model"])
        return cls(
            booster,
            document["feature_names"],
            document["feature_schema"],
            document["training_set"],
            tuple(document["held_out"]),
            document["trained"],
        )


def train(
    features: np.ndarray,
    ratios: np.ndarray,
    groups: list[str],
    feature_names: list[str],
    feature_schema: str,
    held_out=(),
    seed: int = 0,
) -> Ranker:
    """A ranker over rows grouped by graph (``groups``: each row's graph id, rows of a graph together)."""
    import lightgbm

    sizes = _group_sizes(groups)
    data = lightgbm.Dataset(
        np.asarray(features, dtype=np.float32), label=grades(ratios), group=sizes, feature_name=_safe(feature_names)
    )
    booster = lightgbm.train(PARAMS | {"seed": seed}, data, num_boost_round=ROUNDS)
    digest = hashlib.sha256(
        np.asarray(features, dtype=np.float32).tobytes() + np.asarray(ratios, dtype=np.float64).tobytes()
    ).hexdigest()[:16]
    return Ranker(booster, list(feature_names), feature_schema, digest, tuple(held_out), time.strftime("%Y-%m-%d"))


def _graphopt_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("graphopt")
    except PackageNotFoundError:
        return "unknown"


def _lightgbm_version() -> str:
    import lightgbm

    return lightgbm.__version__


def _group_sizes(groups: list[str]) -> list[int]:
    sizes, previous = [], object()
    for group in groups:
        if group != previous:
            sizes.append(0)
            previous = group
        sizes[-1] += 1
    if len(sizes) != len(set(groups)):
        raise ValueError("rows of one graph must be together")
    return sizes


def _safe(names: list[str]) -> list[str]:
    """LightGBM refuses some characters in feature names (JSON specials): keep them readable."""
    return [
        name.replace(":", "_").replace(",", "_").replace("[", "(").replace("]", ")").replace('"', "") for name in names
    ]
