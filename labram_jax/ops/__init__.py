"""Pure functions for LaBraM's math: Fourier targets, masking, quantisation, losses, masked statistics."""
