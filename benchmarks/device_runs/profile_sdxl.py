import sys, torch
sys.path.insert(0, "benchmarks")
import gpu_figures as g
from torch.profiler import profile, ProfilerActivity
from zsampling import Standard
from zsampling.integrations.diffusers import generate
from zsampling.testing.tiny import latents_noise
torch.manual_seed(0)
pipe = g.sdxl_pipeline("full", "cuda", torch.float16); pipe.set_progress_bar_config(disable=True)
lat = latents_noise(g.SEEDS, (4, 128, 128)).to("cuda", torch.float16)
arms = {
 "generate()": lambda: generate(pipe, g.PROMPTS, sampler=Standard(guidance=5.0), steps=15, seed=g.SEEDS, height=1024, width=1024, output_type="latent"),
 "pipe()": lambda: pipe(g.PROMPTS, latents=lat.clone(), guidance_scale=5.0, num_inference_steps=15, height=1024, width=1024, output_type="latent").images,
}
for f in arms.values(): f()
for name, f in arms.items():
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        f(); torch.cuda.synchronize()
    ev = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
    total = sum(e.device_time for e in ev) / 1e3
    print(f"{name}: {len(ev)} kernels, {total:.1f} ms of kernel time", flush=True)
    print(prof.key_averages().table(sort_by="self_device_time_total", row_limit=12, max_name_column_width=60), flush=True)
