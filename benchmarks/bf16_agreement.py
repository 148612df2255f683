"""How far bf16 autocast evaluation moves sub-network errors compared with float32, and how much faster it is.

Evaluates the same uniformly sampled `small` configs of a fine-tuned super-network checkpoint (a folder
written by plm_nasbench.models.save_checkpoint, e.g. one the generation pipeline trained) in both dtypes.

    python benchmarks/bf16_agreement.py --checkpoint PATH --task rte --data-dir ../shared/datasets
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from scipy.stats import kendalltau, spearmanr

from plm_nasbench.evaluation.evaluator import evaluate_subnetworks
from plm_nasbench.models import architecture_of, load_checkpoint, load_tokenizer
from plm_nasbench.provenance import cpu_model
from plm_nasbench.spaces import get_search_space
from plm_nasbench.tasks import load_task
from plm_nasbench.tasks.batching import encode_task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--task", required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--configs", type=int, default=100)
    parser.add_argument("--max-examples", type=int, default=2048, help="cap on the valid and test splits")
    args = parser.parse_args()
    model, provenance = load_checkpoint(args.checkpoint)
    data = load_task(args.task, args.data_dir, max_valid=args.max_examples, max_test=args.max_examples,
                     allow_partial=True)
    encoded = encode_task(data, load_tokenizer(provenance["description"]["model"]),
                          provenance["description"]["max_length"])
    space = get_search_space("small", architecture_of(model))
    rng = np.random.default_rng(0)
    configs = [space.sample(rng) for _ in range(args.configs)] + [space.largest()]
    frames, seconds = {}, {}
    for dtype in ("float32", "bfloat16"):
        start = time.perf_counter()
        frames[dtype] = evaluate_subnetworks(model, data.spec, encoded, space, configs, dtype=dtype)
        seconds[dtype] = time.perf_counter() - start
    report = {"task": args.task, "configs": len(configs), "rows_valid": len(data.valid), "rows_test": len(data.test),
              "threads": torch.get_num_threads(), "cpu": cpu_model(), "checkpoint": args.checkpoint}
    for split in ("valid", "test"):
        a, b = frames["float32"][f"{split}_error"].to_numpy(), frames["bfloat16"][f"{split}_error"].to_numpy()
        report[split] = {"max_abs_difference": float(np.max(np.abs(a - b))),
                         "mean_abs_difference": float(np.mean(np.abs(a - b))),
                         "kendall_tau": float(kendalltau(a, b).statistic), "spearman": float(spearmanr(a, b).statistic),
                         "unpruned_float32": float(a[-1]), "unpruned_bfloat16": float(b[-1])}
    report["seconds"] = seconds
    report["bf16_speedup"] = seconds["float32"] / seconds["bfloat16"]
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
