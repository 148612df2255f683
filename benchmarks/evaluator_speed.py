"""Configs evaluated per second: the evaluator (extracted sub-networks, depth sharing) against the naive way.

Naive: the full network with masks (plm_nasbench.models.masked), one config at a time. Both evaluate the
same 100 uniformly sampled `small` configs of minilm-l6-h384 on the same capped RTE valid and test splits.

    python benchmarks/evaluator_speed.py --data-dir ../shared/datasets [--configs 100 --max-examples 128]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from plm_nasbench.evaluation.evaluator import evaluate_subnetworks
from plm_nasbench.evaluation.predict import predict, score
from plm_nasbench.models import architecture_of, load_model, load_tokenizer, masked
from plm_nasbench.provenance import cpu_model
from plm_nasbench.spaces import get_search_space
from plm_nasbench.tasks import load_task
from plm_nasbench.tasks.batching import encode_task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--configs", type=int, default=100)
    parser.add_argument("--max-examples", type=int, default=128, help="cap on the valid and test splits")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--batch-size", type=int, default=16, help="evaluation batch size, the same for both ways")
    args = parser.parse_args()
    torch.manual_seed(0)
    data = load_task("rte", args.data_dir, max_valid=args.max_examples, max_test=args.max_examples)
    encoded = encode_task(data, load_tokenizer())
    model = load_model(task="rte")
    space = get_search_space("small", architecture_of(model))
    rng = np.random.default_rng(0)
    configs = [space.sample(rng) for _ in range(args.configs)]

    start = time.perf_counter()
    fast = evaluate_subnetworks(model, data.spec, encoded, space, configs, batch_size=args.batch_size,
                                dtype=args.dtype)
    fast_seconds = time.perf_counter() - start

    start = time.perf_counter()
    naive = []
    for config in configs:
        with masked(model, space, config):
            naive.append(score(data.spec, predict(model, encoded.valid, False, args.batch_size, args.dtype),
                               encoded.valid.labels)[1])
            predict(model, encoded.test, False, args.batch_size, args.dtype)
    naive_seconds = time.perf_counter() - start
    agreement = float(np.max(np.abs(np.array(naive) - fast["valid_error"].to_numpy())))
    print(json.dumps({
        "configs": args.configs, "examples_per_split": args.max_examples, "dtype": args.dtype,
        "batch_size": args.batch_size,
        "threads": torch.get_num_threads(), "cpu": cpu_model(),
        "evaluator_configs_per_s": args.configs / fast_seconds, "naive_configs_per_s": args.configs / naive_seconds,
        "speedup": naive_seconds / fast_seconds, "max_valid_error_difference": agreement,
    }, indent=2))


if __name__ == "__main__":
    main()
