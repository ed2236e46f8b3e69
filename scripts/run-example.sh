#!/usr/bin/env bash
# The main job: set-up (apt packages, build, install), then a real two-instance launch of the
# bundled example. Each instance prints its CPUs and its result; logs go to ./logs.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/scripts/setup.sh"
ipexrun --ninstances 2 --log-dir "$root/logs" "$root/scripts/example_inference.py" --iterations 20
