"""Device diagnosis: FLUX generate() vs pipe() mismatch (precision or bug?), SDXL sync count and a
longer standard comparison."""
import argparse, sys, time, warnings, statistics
from pathlib import Path
import torch
sys.path.insert(0, "benchmarks")
import gpu_figures as g
from zsampling import Standard
from zsampling.integrations.diffusers import generate

def rel(a, b):
    a, b = a.double(), b.double()
    return float((a - b).norm() / b.norm())

def syncs(fn):
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            fn()
        finally:
            torch.cuda.set_sync_debug_mode(0)
    msgs = [str(x.message)[:60] for x in w if "synchroniz" in str(x.message)]
    return len(msgs)

args = argparse.Namespace(device="cuda", dtype="float16", size="full", steps=15, rounds=15, px=1024,
                          flux_steps=2, flux_dtype="float32")
torch.manual_seed(0)
pipe = g.sdxl_pipeline("full", "cuda", torch.float16); pipe.set_progress_bar_config(disable=True)
from zsampling.testing.tiny import latents_noise
lat = latents_noise(g.SEEDS, (4, 128, 128)).to("cuda", torch.float16)
ours = lambda: generate(pipe, g.PROMPTS, sampler=Standard(guidance=5.0), steps=15, seed=g.SEEDS, height=1024, width=1024, output_type="latent")
theirs = lambda: pipe(g.PROMPTS, latents=lat.clone(), guidance_scale=5.0, num_inference_steps=15, height=1024, width=1024, output_type="latent").images
ours(); theirs()
print("SDXL syncs per run: generate()", syncs(ours), "pipe()", syncs(theirs), flush=True)
fig = g.standard_figure(pipe, args, lat)
print("SDXL standard 15 rounds:", fig.ratio, fig.low, fig.high, fig.details, flush=True)
del pipe; import gc; gc.collect(); torch.cuda.empty_cache()

fp = g.flux_pipeline("full", "cuda", torch.float32); fp.set_progress_bar_config(disable=True)
def flux(steps, px):
    a = generate(fp, g.PROMPTS, sampler=Standard(guidance=3.5), steps=steps, seed=g.SEEDS, height=px, width=px, output_type="latent")
    b = fp(g.PROMPTS, generator=[torch.Generator().manual_seed(s) for s in g.SEEDS], guidance_scale=3.5, num_inference_steps=steps, height=px, width=px, output_type="latent").images
    c = fp(g.PROMPTS, generator=[torch.Generator().manual_seed(s) for s in g.SEEDS], guidance_scale=3.5, num_inference_steps=steps, height=px, width=px, output_type="latent").images
    return rel(a, b), rel(c, b), float(b.double().norm() / b.numel() ** 0.5)
for dt in (torch.float32, torch.bfloat16):
    fp.to(dtype=dt)
    for steps in (1, 2):
        t = time.time()
        r = flux(steps, 512)
        print(f"FLUX {dt} 512px steps={steps}: ours-vs-pipe {r[0]:.3e} pipe-vs-pipe {r[1]:.3e} rms {r[2]:.3g} ({time.time()-t:.1f}s)", flush=True)
