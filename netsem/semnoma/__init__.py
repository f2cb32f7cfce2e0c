"""Seed 004, KDD-SemNOMA: semantic NOMA uplink with an SNR/CSI-adaptive ConvNeXt JSCC, SIC at
the base station, teacher-student distillation and a refinement stage.

    config    sizes and the symbol accounting
    model     the JSCC (ConvNeXt stages, adaptive feature modules), cut into trunk and head
    channel   the uplink: superposition, AWGN / Rayleigh, SIC order, adaptive-module context
    scheme    one transmission through a model: OMA (teacher) or NOMA with SIC
    distill   feature-affinity and cross-head prediction distillation
    refine    the refinement stage (conditional residual denoiser)
    train     resumable CPU training of every role; weights in netsem/weights/semnoma-*.safetensors
"""
