"""SPR (Sparse Priming Representation): compress documents into short statements, decompress
them back into prose, and measure the roundtrip quality. Pure functions, no Prefect; the @task
wrappers live in `tasks.spr.prefect_tasks`."""

from tasks.spr.analyze import analyze
from tasks.spr.compress import compress
from tasks.spr.decompress import decompress
from tasks.spr.quality import quality

__all__ = ["analyze", "compress", "decompress", "quality"]
