"""samg-video: spatio-temporal Spatial Adaptive Multi Guidance for text-to-video diffusion."""
__version__ = "0.1.0"
