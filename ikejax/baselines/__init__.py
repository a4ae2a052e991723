"""The other zero-shot methods: KernelGAN's kernel estimate (`kernelgan`) and ISSR-DIL's
linear inverse (`dil`)."""
