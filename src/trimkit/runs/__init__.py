"""The run folder: its layout, the log of stage records, the baseline, and a reader.

Below both the pipeline (which writes runs) and the report and search (which read them):
nothing here loads a model or imports torch.
"""

from trimkit.runs._baseline import baseline, baseline_position
from trimkit.runs._folder import RunFolder, read_run
from trimkit.runs._layout import (LOG, MODEL, ONNX, ORIGINAL, RECIPE, REPORT, from_run, in_run, locate,
                                  stage_folder)
from trimkit.runs._log import RunLog, StageRecord, read_log

__all__ = [
    "LOG",
    "MODEL",
    "ONNX",
    "ORIGINAL",
    "RECIPE",
    "REPORT",
    "RunFolder",
    "RunLog",
    "StageRecord",
    "baseline",
    "baseline_position",
    "from_run",
    "in_run",
    "locate",
    "read_log",
    "read_run",
    "stage_folder",
]
