"""Seed 000, group-wise semantic splitting multiple access: users' images split into private
features (unicast) and group-common features (multicast), with balanced clustering.

    config      sizes and the symbol accounting (no torch)
    model       the networks (semantic, private, common encoders; decoder)
    clustering  Algorithm 1 (K-means + Hungarian, equal group sizes) and batch-order groups
    losses      Charbonnier + repulsion
    channel     AWGN / Rician / Rayleigh per user, from the analog PHY face
    scheme      one downlink transmission: encode, group, channel, decode
    data        32x32 crops of the training / evaluation photographs
    train       Algorithm 2, resumable; weights in netsem/weights/gssma-*.safetensors
    msssim      MS-SSIM (the perceptual metric: no VGG weights offline)
    evaluate    PSNR / MS-SSIM against SNR for every scheme; classic   the JPEG/WebP + LDPC chain
    streams     stream ids and features <-> LatentFrames (no torch)
    session     the sans-I/O multicast session (sender plan, receiver core)
    transport   its trio edge: multicast and unicast UDP sockets on loopback
    cli         `netsem multicast`, `netsem multiuser-eval`, `netsem multiuser-train`
"""
