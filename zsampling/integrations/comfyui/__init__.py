"""zsampling inside ComfyUI: SAMPLER and SIGMAS nodes over ComfyUI's own sampling.

Only importable inside ComfyUI (the modules import ``comfy``). The custom-node folder
``comfyui/zsampling_nodes`` at the top of the repository exposes `nodes.NODE_CLASS_MAPPINGS`;
docs/comfyui.md says how to install it and how guidance per call works.

- `levels`: ComfyUI's sigmas as zsampling levels (the ``ve`` or ``flow`` process of a model).
- `guidance`: the scale a sampler asks for, on each call, through ComfyUI's guider.
- `sampling`: the sampler function ComfyUI's ``KSAMPLER`` calls, and W2SD's second model.
- `widgets`: a component's settings as node inputs.
- `nodes`: the node classes.
- `ksampler`: the route samplers by name in ComfyUI's own sampler list (``KSampler``).
"""
