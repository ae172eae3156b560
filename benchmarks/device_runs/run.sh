#!/bin/bash
# Device run: CUDA half-precision check and the GPU figures (issue 17).
set -o pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_VERBOSITY=error DIFFUSERS_VERBOSITY=error
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee $OUT/nvidia-smi.txt
python3 -c "import torch, diffusers, transformers, pydantic, zsampling; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'diffusers', diffusers.__version__, 'transformers', transformers.__version__, 'zsampling', zsampling.__version__)" 2>&1 | tee $OUT/versions.txt
timeout 100 python3 benchmarks/half_precision.py --device cuda 2>&1 | grep -v -e Loading -e '^$' | tee $OUT/half_precision.md
timeout 470 python3 benchmarks/gpu_figures.py --steps 15 --flux-steps 10 --write docs/benchmarks.md 2>&1 | grep -v -e Loading -e '^$' > $OUT/gpu_figures.log
echo "gpu_figures exit ${PIPESTATUS[0]}"
tail -40 $OUT/gpu_figures.log
cp docs/benchmarks.md $OUT/benchmarks.md
