"""Tables: the Parquet schema, atomic checksummed files and the manifest (no torch)."""

from .files import ChecksumError, read_parquet, write_parquet
from .manifest import MANIFEST_FILE, Manifest
from .schema import COLUMNS, SCHEMA_VERSION, SCHEMES, conform

__all__ = ["COLUMNS", "ChecksumError", "MANIFEST_FILE", "Manifest", "SCHEMA_VERSION", "SCHEMES", "conform",
           "read_parquet", "write_parquet"]
