"""Seed 001: explicit semantic bases (Sebs), a versioned knowledge base, UEP and KB updates.

    model       f_SE / f_TP: patch features (one 64-number vector per 16x16 patch) and back
    saliency    spectral-residual saliency: the importance of patches, regions and Sebs
    kb          the knowledge base: fine and coarse Sebs per feature slice (eqs. 1-5), files
    segment     a seb frame's self-contained segments of Seb indices
    codec       the `seb` codec (registry id 16): importance-driven fine/coarse coding, UEP classes
    kb_update   the KB update mode (Algorithm 1) and its message (msg_type KB_UPDATE)
    session     sans-I/O sender and receiver of a sequence with updates in band
    network     the cores on a virtual clock or over a real UDP socket pair
    evaluate    the Fig. 8 structure: vs SNR (PHY, equal channel uses) and vs loss
    train, data training (tools/training/SEB.md) and the photographs used
    cli         `netsem seb-sequence`, `netsem seb-eval`
"""
