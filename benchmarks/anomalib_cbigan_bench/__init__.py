"""Benchmark sweeps through anomalib's pipeline: our models beside anomalib's, resumable, on several workers.

Example:
    >>> from anomalib_cbigan_bench import Sweep, SweepJobGenerator, SweepJob
    >>> issubclass(SweepJob, __import__("anomalib.pipelines.benchmark.job", fromlist=["BenchmarkJob"]).BenchmarkJob)
    True
"""

from .generator import SweepConfigError, SweepJobGenerator, job_id
from .job import SweepJob, finished_rows
from .pipeline import Sweep, write_results

__all__ = ["Sweep", "SweepConfigError", "SweepJob", "SweepJobGenerator", "finished_rows", "job_id", "write_results"]
