"""The tables and surrogates committed to the repository are consistent with each other (the package's folders,
whatever $PLM_NASBENCH_DATA and $PLM_NASBENCH_SURROGATES say)."""

from __future__ import annotations

from plm_nasbench.paths import PACKAGE_DATA, PACKAGE_SURROGATES
from plm_nasbench.surrogates.build import fitted_elsewhere
from plm_nasbench.tables import Manifest


def test_every_shipped_table_matches_its_checksum_and_row_count():
    manifest = Manifest.load(PACKAGE_DATA)
    for relpath, entry in manifest.tables.items():
        assert len(manifest.read(relpath)) == entry["rows"], relpath


def test_every_shipped_surrogate_learned_from_the_shipped_tables():
    """A table regenerated without rebuilding the surrogates would leave them out of backend='auto'."""
    manifest = Manifest.load(PACKAGE_DATA)
    folders = [p.parent for p in PACKAGE_SURROGATES.glob("*/*/*/*/surrogate.json")]
    assert folders
    for folder in folders:
        assert fitted_elsewhere(folder, manifest) is None, folder
