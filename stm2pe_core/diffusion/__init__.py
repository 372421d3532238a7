"""Sampling: scheduler set-up, classifier-free guidance, context windows, reference encoding, segment denoising."""
