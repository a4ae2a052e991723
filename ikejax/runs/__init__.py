"""Jobs: the methods registry (`methods`), folder runs (`folder`), batched IKE over a device
mesh (`batch`) and the outputs and records every run writes (`records`)."""
