"""The tables and surrogates committed to the repository are consistent with each other."""

from __future__ import annotations

from pathlib import Path

from plm_nasbench.paths import data_dir, surrogates_dir
from plm_nasbench.surrogates.build import fitted_elsewhere
from plm_nasbench.tables import Manifest


def test_every_shipped_table_matches_its_checksum_and_row_count():
    manifest = Manifest.load(data_dir())
    for relpath, entry in manifest.tables.items():
        assert len(manifest.read(relpath)) == entry["rows"], relpath


def test_every_shipped_surrogate_learned_from_the_shipped_tables():
    """A table regenerated without rebuilding the surrogates would leave them out of backend='auto'."""
    manifest = Manifest.load(data_dir())
    folders = [p.parent for p in Path(surrogates_dir()).glob("*/*/*/*/surrogate.json")]
    assert folders
    for folder in folders:
        assert fitted_elsewhere(folder, manifest) is None, folder
