"""The kernel boundary: what crosses into the compiled kernels (fastsample._C) and how.

- param_table:   the per-row parameters, declared once (csrc/include/fastsample/param_table.h
                 declares the kernels' side)
- launch:        one call's named argument structs and the one launch path per device
- cuda:          the CUDA device, stream and workspace of a launch
- sample_output: the result type of a sampling call
- custom_ops:    the kernels as torch custom ops, for torch.compile
- build_info:    what this install was built with
"""
