"""bf16 autocast against float32 on this machine: one fine-tuning step and one forward pass of the unpruned model.

Tells whether a machine can run a bf16 plan at a useful speed: where the CPU has no hardware bf16, torch
emulates it and both take several times as long as in float32. Random tokens, median of --repeats after one
warm-up; prints JSON with the CPU, whether torch reports hardware bf16, and the seconds per dtype.

    python benchmarks/bf16_speed.py [--threads 1 --repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from plm_nasbench.evaluation.predict import autocast, native_bf16
from plm_nasbench.models import load_model
from plm_nasbench.provenance import cpu_model, cpu_signature


def _median_seconds(step, repeats: int) -> float:
    step()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--train-batch", type=int, default=4, help="the paper's fine-tuning batch size")
    parser.add_argument("--eval-batch", type=int, default=32)
    parser.add_argument("--tokens", type=int, default=128)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = load_model(task="rte")
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5)
    train_ids = torch.randint(1000, 20000, (args.train_batch, args.tokens))
    labels = torch.zeros(args.train_batch, dtype=torch.long)
    eval_ids = torch.randint(1000, 20000, (args.eval_batch, args.tokens))
    result = {"cpu": cpu_model(), "cpu_signature": cpu_signature(), "hardware_bf16": native_bf16("cpu"),
              "threads": args.threads, "torch": torch.__version__, "train_step_s": {}, "forward_s": {}}
    for dtype in ("float32", "bfloat16"):
        def train_step() -> None:
            model.train()
            with autocast(dtype):
                loss = model(input_ids=train_ids, labels=labels).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()

        def forward() -> None:
            model.eval()
            with torch.inference_mode(), autocast(dtype):
                model(input_ids=eval_ids)

        result["train_step_s"][dtype] = round(_median_seconds(train_step, args.repeats), 3)
        result["forward_s"][dtype] = round(_median_seconds(forward, args.repeats), 3)
    for key in ("train_step_s", "forward_s"):
        result[key]["bf16_over_fp32"] = round(result[key]["bfloat16"] / result[key]["float32"], 2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
