"""Reports and result files."""

from riskengine.report.html import Report
from riskengine.report.output import atomic_directory, write_json, write_parquet

__all__ = ["Report", "atomic_directory", "write_json", "write_parquet"]
