"""The suite decides every torch graph afresh: the torch backend's default decision cache (the
user's cache folder) is turned off for it, and for the processes it starts, unless a test names
a folder of its own (graphopt/torch/cache.py)."""

import os

os.environ.setdefault("GRAPHOPT_CACHE_DIR", "off")
