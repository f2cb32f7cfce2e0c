"""Inspection of netsem traffic: a scapy layer, the per-datagram parser and `netsem inspect`.

Nothing here imports torch: inspecting a capture needs only the wire format.
"""
