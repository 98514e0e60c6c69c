"""Reports and result files."""

from riskengine.report.html import Report
from riskengine.report.output import atomic_directory, write_json, write_parquet
from riskengine.report.stress import liquidation_lines, stress_report

__all__ = ["Report", "atomic_directory", "liquidation_lines", "stress_report", "write_json", "write_parquet"]
