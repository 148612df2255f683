"""The paper's findings recomputed on (synthetic) tables: spaces, strategies, optimizer ranks, MO-ASHA vs RS."""

from __future__ import annotations

import contextlib
import itertools
import json
import shutil

import pandas as pd
import pytest

from plm_nasbench.spaces import get_search_space
from plm_nasbench.tables import Manifest, conform, write_parquet

from conftest import synthetic_rows


@pytest.fixture(scope="module")
def findings_data(tables, tmp_path_factory):
    """The session tables plus a `layer` table and a strategy ablation in which `full` beats `standard`."""
    root = tmp_path_factory.mktemp("findings") / "data"
    shutil.copytree(tables[0], root)
    manifest = Manifest.load(root)
    layer = get_search_space("layer", "minilm-l6-h384", task="rte")
    configs = [dict(zip(layer.bounds, bits)) for bits in itertools.product((0, 1), repeat=len(layer.bounds))]
    frame = synthetic_rows(get_search_space("small", "minilm-l6-h384", task="rte"),
                           [{"num_layers": sum(c.values()), "num_heads": 12, "num_units": 1536} for c in configs], "ws-layer")
    frame = conform(frame.assign(search_space="layer", config=[json.dumps(c) for c in configs],
                                 config_id=[layer.config_id(c) for c in configs], num_layers=None, num_heads=None,
                                 num_units=None, params_fraction=[layer.params_fraction(c) for c in configs]), "ws-layer")
    ablation = synthetic_rows(get_search_space("small", "minilm-l6-h384", task="rte"), tables[4][:40],
                              "ws-strategy-ablation")
    ablation = pd.concat([ablation.assign(strategy=s, valid_error=ablation["valid_error"] + shift,
                                          test_error=ablation["test_error"] + shift)
                          for s, shift in (("standard", 0.2), ("random", 0.05), ("full", 0.0))])
    own = conform(frame.assign(supernetwork_space="layer", valid_error=frame["valid_error"] - 0.1), "ws-own-layer")
    for study, table in (("ws-layer", frame), ("ws-own-layer", own),
                         ("ws-strategy-ablation", conform(ablation, "ablation"))):
        relpath = f"minilm-l6-h384/{study}/rte.parquet"
        manifest.record(relpath, table, write_parquet(table, root / relpath), {"study": study})
    manifest.save()
    return manifest


def test_space_and_strategy_comparisons(findings_data):
    from plm_nasbench.findings import SPACE_STUDIES, compare_spaces, compare_strategies

    (_, shared), (_, own) = SPACE_STUDIES.values()
    summary, points = compare_spaces(findings_data, "rte", shared, n=100, draws=4)
    assert set(summary["space"]) == {"small", "layer"}
    assert summary.set_index("space")["sub_networks"].to_dict() == {"small": 100, "layer": 64}
    assert summary["hypervolume_mean"].between(0, 4).all()
    assert summary.set_index("space").loc["layer", "hypervolume_std"] == 0  # all 64 every draw
    strategies, _ = compare_strategies(findings_data, "rte")
    assert strategies["strategy"].tolist()[:3] == ["full", "random", "standard"]  # lower errors, larger hypervolume
    assert (strategies["configs"][:3] == 40).all()
    missing = strategies.iloc[3:]  # a partial ablation names the strategies it lacks
    assert missing["strategy"].tolist() == ["random-linear", "sandwich", "kd"]
    assert (missing["hypervolume_valid"] == "not run yet").all()
    assert (summary["super_network"] == "not recorded").all()  # synthetic rows name no super-network
    own_summary, _ = compare_spaces(findings_data, "rte", own, n=100, draws=4)
    assert set(own_summary["space"]) == {"small", "layer"}
    assert compare_spaces(findings_data, "mrpc", shared) is None and compare_strategies(findings_data, "mrpc") is None


def test_strategy_ranks_over_tasks_with_every_strategy(findings_data, tables, tmp_path):
    from plm_nasbench.benchmark.core import STRATEGIES
    from plm_nasbench.findings import compare_strategies, rank_strategies

    def compared(manifest: Manifest, tasks: list[str]) -> dict[str, pd.DataFrame]:
        return {t: r[1] for t in tasks if (r := compare_strategies(manifest, t)) is not None}

    assert rank_strategies(compared(findings_data, ["rte", "mrpc"])) is None  # rte's ablation has 3 strategies
    root = tmp_path / "data"
    shutil.copytree(findings_data.root, root)
    manifest = Manifest.load(root)
    rows = synthetic_rows(get_search_space("small", "minilm-l6-h384", task="rte"), tables[4][:40], "ws-strategy-ablation")
    shifts = dict(zip(STRATEGIES, (0.25, 0.2, 0.15, 0.1, 0.05, 0.0)))  # `full` lowest errors: rank 1 in every draw
    for k, task in enumerate(("rte", "mrpc")):  # each strategy's rows in another order
        ablation = conform(pd.concat([rows.assign(strategy=s, task=task, valid_error=rows["valid_error"] + shift)
                                      .sample(frac=1.0, random_state=k * 10 + i)
                                      for i, (s, shift) in enumerate(shifts.items())]), "ablation")
        relpath = f"minilm-l6-h384/ws-strategy-ablation/{task}.parquet"
        manifest.record(relpath, ablation, write_parquet(ablation, root / relpath), {"study": "ws-strategy-ablation"})
    manifest.save()
    complete, ranks = rank_strategies(compared(Manifest.load(root), ["rte", "mrpc", "stsb"]), draws=20)
    assert complete == ["mrpc", "rte"]
    assert ranks == {s: (float(rank), 0.0) for rank, s in enumerate(reversed(STRATEGIES), start=1)}


def test_findings_block_and_plots(findings_data, tables, tmp_path, capsys):
    from plm_nasbench.findings import END, START, main

    surrogates = tables[1]
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n{START}\nold\n{END}\n")
    main(["--data", str(findings_data.root), "--surrogates", str(surrogates), "--seeds", "2", "--evaluations", "12", "--readme", str(readme),
          "--plots", str(tmp_path / "plots")])
    text = readme.read_text()
    assert "old" not in text and "(a) Search spaces" in text and "| full |" in text
    for method in ("rs", "ls", "morea", "moasha"):
        assert f"| {method} |" in text
    names = {p.name for p in (tmp_path / "plots").iterdir()}
    assert {"findings-spaces-shared-rte.png", "findings-strategy-rte.png", "findings-ranks-ws.png",
            "findings-ranks-standalone.png", "findings-regret-standalone-rte.png",
            "findings-regret-standalone-table-rte.png"} <= names
    assert "real learning curves only" in text and text.count("| moasha |") == 2  # surrogate-filled and table-only
    check_findings_stamps(findings_data, surrogates, readme, tmp_path, capsys)


def check_findings_stamps(findings_data, surrogates, readme, tmp_path, capsys):
    """`--check` finds every section current right after a run, and names those whose tables or surrogates changed
    since, or that tasks it does not include now feed."""
    from plm_nasbench.findings import check_block, main

    def states(data, surrogate_root, stale: bool) -> dict[str, str]:
        with pytest.raises(SystemExit) if stale else contextlib.nullcontext() as stopped:
            main(["--data", str(data), "--surrogates", str(surrogate_root), "--readme", str(readme), "--check"])
        assert stopped is None or stopped.value.code == 1
        found = {}
        for line in capsys.readouterr().out.splitlines():
            state, heading = line.split("#### ", 1)
            found[heading.split(":")[0].split(" (hyper")[0]] = state.strip()
        return found

    capsys.readouterr()
    fresh = states(findings_data.root, surrogates, stale=False)
    assert len(fresh) == 6 and set(fresh.values()) == {"current"}  # (a) twice, (b), (c), (d) twice
    root = tmp_path / "changed"
    shutil.copytree(findings_data.root, root)
    manifest = Manifest.load(root)
    layer = manifest.read("minilm-l6-h384/ws-layer/rte.parquet")
    layer = layer.assign(valid_error=layer["valid_error"] + 0.01)
    ablation = manifest.read("minilm-l6-h384/ws-strategy-ablation/rte.parquet").assign(task="stsb")
    for relpath, table in (("minilm-l6-h384/ws-layer/rte.parquet", layer),
                           ("minilm-l6-h384/ws-strategy-ablation/stsb.parquet", ablation)):
        manifest.record(relpath, table, write_parquet(table, root / relpath), {"study": relpath.split("/")[1]})
    manifest.save()
    found = states(root, surrogates, stale=True)
    assert found.pop("(a) Search spaces, one super-network trained on small") == "changed"
    assert found.pop("(c) RS, LS, MO-REA, EHVI in weight sharing") == "changed"  # its super-network's other tables
    assert found.pop("(b) Super-network training strategies") == "more tasks: stsb"
    assert set(found.values()) == {"current"}
    copied = tmp_path / "surrogates"
    shutil.copytree(surrogates, copied)
    for sums in copied.glob("*/standalone/none/rte/checksums.json"):
        sums.write_text(sums.read_text() + "\n")
    found = states(findings_data.root, copied, stale=True)
    assert [h for h, s in found.items() if s == "changed"] == [
        "(d) MO-ASHA against RS in standalone fine-tuning (the standalone surrogate answers configurations off the table)"]
    block = "Generated.\n\n#### (a) old\nno stamp\n\n#### (b) new\n<!-- inputs: spaces-x model=m tasks=rte sha256=0123456789abcdef -->"
    assert check_block(block, findings_data) == [("#### (a) old", "unstamped"), ("#### (b) new", "unknown stamp: spaces-x")]


def test_stamps_cover_only_the_tasks_a_section_includes(findings_data, tables, tmp_path, capsys):
    """A task with too few tables for a section stays out of its stamp: its tables may change without making the
    section stale, and once it has enough the section asks for more tasks."""
    from plm_nasbench.findings import END, START, main

    root = tmp_path / "data"
    shutil.copytree(findings_data.root, root)

    def add(study: str, table: pd.DataFrame) -> None:
        manifest = Manifest.load(root)
        relpath = f"minilm-l6-h384/{study}/mrpc.parquet"
        table = table.assign(task="mrpc")
        manifest.record(relpath, table, write_parquet(table, root / relpath), {"study": study})
        manifest.save()

    def states() -> list[str]:
        capsys.readouterr()
        try:
            main(["--data", str(root), "--surrogates", str(tables[1]), "--readme", str(readme), "--check"])
            status = 0
        except SystemExit as stopped:
            status = stopped.code
        found = [line.split()[0] if line.startswith("current") else line.split(" #### ")[0]
                 for line in capsys.readouterr().out.splitlines()]
        assert status == (0 if set(found) == {"current"} else 1)
        return found

    layer = findings_data.read("minilm-l6-h384/ws-layer/rte.parquet")
    curves = findings_data.read("minilm-l6-h384/standalone-small/rte.parquet")
    unpruned = curves[curves["config_id"] == curves["config_id"].iloc[0]]
    add("ws-layer", layer)  # one space table: mrpc cannot enter (a)
    add("standalone-unpruned", unpruned)  # one learning curve: nor (d)
    readme = tmp_path / "README.md"
    readme.write_text(f"{START}\nGenerated before.\n{END}\n")
    main(["--data", str(root), "--surrogates", str(tables[1]), "--readme", str(readme), "--plots",
          str(tmp_path / "plots"), "--only", "a,d", "--seeds", "2", "--evaluations", "12"])
    text = readme.read_text()
    assert text.count("tasks=rte sha256=") == 4 and "mrpc (" not in text and "seeds on rte," in text
    add("ws-layer", layer.assign(valid_error=layer["valid_error"] + 0.01))
    add("standalone-unpruned", unpruned.assign(valid_error=unpruned["valid_error"] + 0.01))
    assert states() == ["current"] * 4
    add("ws-small-holdout", findings_data.read("minilm-l6-h384/ws-small-holdout/rte.parquet"))
    assert states() == ["more tasks: mrpc"] + ["current"] * 3  # the shared super-network's spaces only


def test_findings_recomputes_only_the_comparisons_asked_for(findings_data, tables, tmp_path):
    from plm_nasbench.findings import END, START, main, splice_sections

    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n{START}\nGenerated before.\n\n#### (a) spaces\nkept a\n\n#### (d) stale\nold d\n\n"
                      f"#### (c) optimizers\nkept c\n{END}\ntail\n")
    main(["--data", str(findings_data.root), "--surrogates", str(tables[1]), "--seeds", "2", "--evaluations", "12",
          "--readme", str(readme), "--plots", str(tmp_path / "plots"), "--only", "d"])
    text = readme.read_text()
    assert "old d" not in text and "Generated before." not in text and text.endswith(f"{END}\ntail\n")
    a, c, d = text.index("kept a"), text.index("kept c"), text.index("real learning curves only")
    assert a < c < d and text.count("| moasha |") == 2 and "| ls |" not in text  # (c) kept as it was, (d) last
    with pytest.raises(ValueError, match="none of the comparisons a, b, c, d: '#### notes'"):
        splice_sections("h\n#### notes\nx", "h\n#### (d) new\ny", ["d"])
    for bad in ("e", ",", "a,x"):
        with pytest.raises(SystemExit):
            main(["--data", str(findings_data.root), "--readme", str(readme), "--only", bad])
    readme.write_text(f"{START}\nGenerated.\n\n#### notes\nx\n{END}\n")  # refused before anything is computed
    with pytest.raises(SystemExit):
        main(["--data", str(findings_data.root), "--readme", str(readme), "--plots", str(tmp_path / "none"), "--only", "d"])
    assert not (tmp_path / "none").exists()


def test_benchmark_picks_the_super_network_and_checks_what_can_be_searched(findings_data, tmp_path):
    from plm_nasbench import Benchmark
    from plm_nasbench.simulation import benchmarks_for

    shared = Benchmark("rte", space="layer", data=findings_data.root)
    own = Benchmark("rte", space="layer", data=findings_data.root, supernetwork_space="layer")
    config = shared.configs()[5]
    assert own.query(config)["valid_error"] == pytest.approx(shared.query(config)["valid_error"] - 0.1)
    assert "supernetwork_space='layer'" in repr(own)
    with pytest.raises(FileNotFoundError, match="supernetwork_space='medium'"):
        Benchmark("rte", space="layer", data=findings_data.root, supernetwork_space="medium")
    with pytest.raises(ValueError, match="unknown supernetwork_space 'tiny'"):
        Benchmark("rte", space="layer", data=findings_data.root, supernetwork_space="tiny")
    curves = findings_data.read("minilm-l6-h384/standalone-small/rte.parquet")
    single = curves[curves["config_id"] == curves["config_id"].iloc[0]]  # like the unpruned runs alone
    manifest = Manifest.load(tmp_path)
    relpath = "minilm-l6-h384/standalone-unpruned/rte.parquet"
    manifest.record(relpath, single, write_parquet(single, tmp_path / relpath), {"study": "standalone-unpruned"})
    manifest.save()
    (tmp_path / "no-surrogates").mkdir()
    with pytest.raises(ValueError, match="moasha on .*1 configuration.*nothing to search"):
        benchmarks_for("rte", ["moasha"], data=tmp_path, surrogates=tmp_path / "no-surrogates")


def test_space_comparison_says_when_its_tables_come_from_several_super_networks(findings_data, tmp_path):
    """A space table made on a super-network trained again (the first one lost) is compared, and named."""
    from plm_nasbench.findings import findings

    root = tmp_path / "data"
    shutil.copytree(findings_data.root, root)
    manifest = Manifest.load(root)
    relpath = "minilm-l6-h384/ws-layer/rte.parquet"
    table = manifest.read(relpath).assign(supernetwork_id="0123456789abcdef")
    manifest.record(relpath, table, write_parquet(table, root / relpath), {"study": "ws-layer"})
    manifest.save()
    text = findings(Manifest.load(root), ["rte"], tmp_path / "plots", only=["a"])
    shared = text.split("#### ")[1]
    assert "| layer | 64 |" in shared and "| 0123456789abcdef |" in shared and "| not recorded |" in shared
    assert "On rte the tables of `small` were made before super-network ids were recorded" in shared
    relpath = "minilm-l6-h384/ws-small-holdout/rte.parquet"  # now a second id
    table = manifest.read(relpath).assign(supernetwork_id="fedcba9876543210")
    manifest.record(relpath, table, write_parquet(table, root / relpath), {"study": "ws-small-holdout"})
    manifest.save()
    text = findings(Manifest.load(root), ["rte"], tmp_path / "plots", only=["a"])
    assert "On rte these tables come from 2 super-networks" in text.split("#### ")[1]
    assert "super-networks" not in text.split("#### ")[2].split("\n", 1)[1]  # own super-networks differ by design
