"""Seed 004, KDD-SemNOMA: semantic NOMA uplink with an SNR/CSI-adaptive ConvNeXt JSCC, SIC at
the base station, teacher-student distillation and a refinement stage.

    config    sizes, the symbol accounting, the ends' agreement (AirSpec); no torch
    images    photographs to the networks' sizes
    model     the JSCC (ConvNeXt stages, adaptive feature modules), cut into trunk and head
    channel   the uplink: superposition, AWGN / Rayleigh, SIC order, adaptive-module context
    scheme    one transmission through a model: OMA (teacher) or NOMA with SIC
    distill   feature-affinity and cross-head prediction distillation
    refine    the refinement stage (conditional residual denoiser)
    train     resumable CPU training of every role; weights in netsem/weights/semnoma-*.safetensors
    weights   shipped models by name
    classic   JPEG / WebP + LDPC + QAM on the same uplink, bit-level SIC
    streams   users' symbols and the received signal on netsem's wire
    air       the superposition as an emulator stage (`--stage noma`)
    network   sender and base station cores, the virtual-clock run
    transport their trio edge
    evaluate  the figures;  cli  `netsem noma-send / noma-recv / noma-simulate / noma-eval`
"""
