"""The command line and the promise that light imports stay light."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from plm_nasbench.cli import main


def test_info_lists_models_spaces_tasks_and_tables(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("PLM_NASBENCH_DATA", str(tmp_path))
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    for word in ("minilm-l6-h384 (default)", "22,713,986 parameters", "bert-base-cased", "roberta-base",
                 "small: 139,867 configs", "layer: 64 configs", "medium: ~6.4 x 10^25 configs",
                 "large: ~9.3 x 10^2795 configs", "stsb: regression",
                 "swag: multiple_choice", "none yet"):
        assert word in out
    from conftest import synthetic_rows
    from plm_nasbench.spaces import get_search_space
    from plm_nasbench.tables import Manifest, conform, write_parquet

    space = get_search_space("small", "minilm-l6-h384", task="rte")
    rows = synthetic_rows(space, [space.sample(np.random.default_rng(i)) for i in range(12)], "s")
    rows = conform(rows.assign(scheme="standalone", strategy="none", supernetwork_space=None), "s")
    manifest = Manifest.load(tmp_path)
    manifest.record("m/s/rte.parquet", rows, write_parquet(rows, tmp_path / "m/s/rte.parquet"), {"study": "s"})
    manifest.save()
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "m/s/rte.parquet: minilm-l6-h384, rte, small, standalone, none: 12 rows" in out
    assert "Benchmarks they answer" in out and "standalone" in out.split("Benchmarks they answer")[1]
    (tmp_path / "m/s/rte.parquet").write_bytes(b"tampered")
    assert main(["info"]) == 2
    assert "m/s/rte.parquet" in capsys.readouterr().err
    (tmp_path / "MANIFEST.json").write_text("{broken")
    assert main(["info"]) == 2
    assert "MANIFEST.json is not valid JSON" in capsys.readouterr().err


def test_space_sizes_of_any_magnitude_print(capsys, monkeypatch, tmp_path):
    from plm_nasbench.cli import _magnitude

    assert [_magnitude(n) for n in (999_999_999, 10**9, 9949 * 10**20, 9950 * 10**20)] == [
        "999,999,999", "~1.0 x 10^9", "~9.9 x 10^23", "~1.0 x 10^24"]
    assert _magnitude(2**37008) == "~3.3 x 10^11140"  # bert-base's large space: more digits than str() takes
    monkeypatch.setenv("PLM_NASBENCH_DATA", str(tmp_path / "none"))
    assert main(["info"]) == 2
    assert "none' does not exist (it came from $PLM_NASBENCH_DATA)" in capsys.readouterr().err


def test_help_and_bad_commands(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert "info" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        main(["info", "--model", "gpt2"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'gpt2'" in capsys.readouterr().err
    for argv, message in ((["pareto", "--task", "rte", "--backend", "table", "--surrogates", "s"],
                           "--surrogates is read with --backend auto only, not with --backend table"),
                          (["query", "--task", "rte", "--backend", "table", "--surrogates", "s", "{}"],
                           "--surrogates is read with --backend auto or surrogate only, not with --backend table"),
                          (["info", "--surrogates", "s"], "unrecognized arguments: --surrogates"),
                          (["simulate", "--task", "rte", "--backend", "table", "--surrogates", "s"],
                           "--surrogates is read with --backend auto only, not with --backend table"),  # no 'surrogate'
                          (["query", "--task", "rte", "--backend", "live", "--data", "d", "{}"],
                           "--data is read with --backend auto or table only, not with --backend live"),
                          (["query", "--task", "rte", "--data-dir", "d", "{}"],
                           "--data-dir is read with --backend live only, not with --backend auto"),
                          (["query", "--task", "rte", "--backend", "table", "--device", "cuda", "{}"],
                           "--device is read with --backend live only, not with --backend table")):
        with pytest.raises(SystemExit) as exit_info:  # an option its backend never reads would do nothing
            main(argv)
        assert exit_info.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize("module", ["plm_nasbench", "plm_nasbench.spaces", "plm_nasbench.architecture",
                                    "plm_nasbench.cli"])
def test_light_imports_do_not_load_torch(module):
    code = (f"import sys, {module}; heavy = [m for m in ('torch', 'transformers', 'syne_tune') if m in sys.modules];"
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""
