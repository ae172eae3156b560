#!/bin/bash
set -o pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_VERBOSITY=error DIFFUSERS_VERBOSITY=error
python3 .whl/noisechk.py 2>&1 | tee $OUT/noise.txt
timeout 290 python3 benchmarks/gpu_figures.py --steps 15 --flux-steps 10 --write docs/benchmarks.md 2>&1 | grep -v -e Loading -e '^$' > $OUT/gpu_figures.log
echo "gpu_figures exit ${PIPESTATUS[0]}"
cp docs/benchmarks.md $OUT/benchmarks.md
grep -A12 "gpu-figures:start" docs/benchmarks.md
timeout 60 python3 .whl/profile_sdxl.py 2>&1 | grep -v -e Loading -e '^$' | tee $OUT/profile.txt | head -60
