"""Host-side imaging in NumPy, no JAX: image and kernel files (`image_io`), bicubic resizing
(`resize`), the zero-parameter filters (`filters`), degradations (`degrade`), metrics
(`metrics`), kernels on the host (`kernels`), the closed-form spectral kernel (`spectral`)
and pictures (`pictures`)."""
