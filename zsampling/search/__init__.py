"""Search strategies (``[search] use = "..."``): which starting noises a search tries."""

from zsampling.search.best_of_n import BestOfN
from zsampling.search.paths import PathSearch
from zsampling.search.zero_order import ZeroOrder

__all__ = ["BestOfN", "PathSearch", "ZeroOrder"]
