"""Offline work behind the learned policy: the corpus, collection (local or Ray) into a
Parquet dataset, training the ranker, and its evaluation on held-out architectures."""
