"""Tables: the Parquet schema, atomic checksummed files and the manifest (no torch)."""

from .files import ChecksumError, read_parquet, write_parquet
from .manifest import MANIFEST_FILE, Manifest
from .served import served_rows, supernetwork_costs
from .schema import COLUMNS, LATENCY_COLUMNS, LATENCY_FIELDS, SCHEMA_VERSION, SCHEMES, conform, supernetwork_seconds

__all__ = ["COLUMNS", "ChecksumError", "LATENCY_COLUMNS", "LATENCY_FIELDS", "MANIFEST_FILE", "Manifest",
           "SCHEMA_VERSION", "SCHEMES", "conform", "read_parquet", "served_rows", "supernetwork_costs",
           "supernetwork_seconds", "write_parquet"]
