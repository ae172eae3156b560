"""Compare settings on your own model: sweeps over up to three axes, each cell an ordinary run,
with a labelled grid per prompt and an HTML page (`zsampling.compare.sweep`)."""
