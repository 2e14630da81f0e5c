"""The learned rewrite policy: trained on what the compilers actually did, shipped as a small
versioned file per target.

    corpus (sampled architectures) -> collect (every pool entry judged: dataset, Parquet)
      -> train (LightGBM lambdarank) -> weights/<target>.json -> Learned (predicted order)
      -> eval (learned vs greedy, random, search at equal budget, on held-out architectures)

``pool`` is the candidate set all of them talk about, ``features`` what the ranker reads,
``dataset`` the schema on disk, ``ranker`` the model and its weights file.
"""

from __future__ import annotations

import logging
from pathlib import Path

WEIGHTS = Path(__file__).parent / "weights"


def weights_path(target_name: str) -> Path:
    return WEIGHTS / f"{target_name}.json"


def learned_policy(fmt=None, target=None):
    """The learned policy for ``target`` with its shipped weights (the measured search when
    there are none for it, or lightgbm is not installed)."""
    from graphopt.policies.learned import Learned

    ranker = None
    path = weights_path(target.name) if target is not None else None
    if path is not None and path.exists():
        try:
            from graphopt.policies.ranker import Ranker

            ranker = Ranker.load(path)
        except ImportError as error:
            logging.getLogger("graphopt.policies").warning(
                "graphopt: learned policy unavailable (%s); using the measured search", error
            )
    return Learned(ranker, fmt)
