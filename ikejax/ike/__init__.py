"""IKE, the Invertible Kernel Estimator: presets (`configs`), the invertible flow (`flow`),
U (`networks`), the bicubic-residual wiring (`model`), one function per paper equation
(`losses`), the state and the jitted iteration (`train`), internal validation
(`validation`), whole-image inference (`infer`) and IKE's learned kernel (`kernel`)."""
