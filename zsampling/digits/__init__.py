"""The embedded model: a class-conditional diffusion model of scikit-learn's 8x8 digits."""
