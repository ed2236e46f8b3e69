"""The bundled example: a small convolutional network run for inference in each instance.

Every instance prints where it runs (its CPUs as the kernel sees them, its OpenMP team size)
and what it computed (a checksum of the output and the time per batch), so a two-instance
launch shows at a glance that each instance got its own CPUs:

    ipexrun --ninstances 2 scripts/example_inference.py --iterations 20
"""
import argparse
import os
import time


def cpus_allowed():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("Cpus_allowed_list:"):
                return line.split(":", 1)[1].strip()
    return "?"


# The kernel's view, read before torch starts OpenMP: with OpenMP affinity variables set, the
# OpenMP runtime binds this (main) thread to the first CPU of its instance as it starts
# (GNU OpenMP already when it is loaded), so this may show one CPU of the instance.
CPUS_AT_START = cpus_allowed()

import torch  # noqa: E402
import torchvision  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=2)
    args = parser.parse_args()

    torch.manual_seed(0)  # same weights and input in every instance: same checksum
    model = torchvision.models.resnet18(num_classes=10).eval()
    x = torch.randn(args.batch_size, 3, 112, 112)
    with torch.no_grad():
        out = model(x)  # warm-up
        start = time.perf_counter()
        for _ in range(args.iterations):
            out = model(x)
        elapsed = (time.perf_counter() - start) / args.iterations

    index = os.environ.get("IPEXRUN_INSTANCE_INDEX", "-")
    print(f"instance {index}: CPUs {os.environ.get('IPEXRUN_CPUS', CPUS_AT_START)} "
          f"(main thread on {CPUS_AT_START}), OMP_NUM_THREADS="
          f"{os.environ.get('OMP_NUM_THREADS', 'unset')}, torch threads {torch.get_num_threads()}, "
          f"resnet18 batch {args.batch_size}: {elapsed * 1e3:.1f} ms/batch, "
          f"checksum {out.sum().item():.4f}", flush=True)


if __name__ == "__main__":
    main()
