import torch
from diffusers.utils.torch_utils import randn_tensor
from zsampling import initial_noise
print("torch", torch.__version__)
for dt in (torch.float16, torch.bfloat16):
    a = torch.randn((1, 16, 64, 64), generator=torch.Generator().manual_seed(3), dtype=dt)
    b = torch.randn((1, 16, 64, 64), generator=torch.Generator().manual_seed(3)).to(dt)
    ours = initial_noise((16, 64, 64), [3, 4], dt)[0]
    theirs = randn_tensor((2, 16, 64, 64), generator=[torch.Generator().manual_seed(s) for s in (3, 4)], dtype=dt)
    print(dt, "half draw == float32 draw cast:", torch.equal(a, b), "| initial_noise == randn_tensor:", torch.equal(ours, theirs))
