"""The shapes world: flat-coloured shapes, the prompts that name them, an exact judge, and the
tiny Stable Diffusion pipeline trained on them (docs/shapes.md)."""
