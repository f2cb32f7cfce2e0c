"""Bit packing and frame unpacking compiled with numba: the compiled engine (`packetizers.engine`).

The numpy engine packs a frame as a gather of its elements into datagram order and a dozen
whole-array steps on uint64 words (bitpack.py), and unpacks a received frame by joining its
payload pieces in Python and unpacking them at once; each step is fast, but a frame of ~100
datagrams takes some 60 of them, and checking a run of received datagrams as many more.  Here
each is one pass: `pack_runs` gathers the plan's runs of elements and packs them, `check_run`
makes the reassembler's run checks datagram by datagram over the run's bytes, and `unpack_runs`
writes each received run of elements where it belongs in the frame, with its mask.  Elements are
handled as unsigned bits (a signed latent is viewed as unsigned on the way in and sign-extended
on the way out, bitpack's `as_signed`), so each kernel compiles for two element types only,
uint8 and uint16.

Widths up to 8 go 8 elements at a time: 8 elements of b bits are exactly b bytes, read or
written as one 64-bit word and spread or merged in three steps of neighbouring lanes (as
bitpack's numpy form does it over whole arrays).  Wider elements, and runs that do not start on
a byte, go element by element.  Compiled on first use, cached beside this file.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from packetizers import bitpack
from packetizers.wire import CRC_SIZE, FRAME_WIDE_SIZE, HEADER_SIZE, UNIT_ID_SIZE

_U = np.uint64
SPARE = 8  # bytes a kernel may read or write past the data: one whole word


@njit(cache=True, nogil=True, inline="always")
def _lanes(width, lane):  # pragma: no cover (compiled)
    """The low `width` bits of every `lane`-bit lane of a 64-bit word."""
    word = (_U(1) << _U(width)) - _U(1)
    mask = _U(0)
    for shift in range(0, 64, lane):
        mask |= word << _U(shift)
    return mask


@njit(cache=True, nogil=True, inline="always")
def _load_be(data, at):  # pragma: no cover (compiled)
    """data[at : at + 8] as a big-endian word (at: uint64)."""
    word = _U(0)
    for k in range(8):
        word = (word << _U(8)) | _U(data[at + _U(k)])
    return word


@njit(cache=True, nogil=True, boundscheck=False)
def _pack_runs(elements, run_source, run_length, bit_width, scratch, out):  # pragma: no cover (compiled)
    """out[: packed_size(scratch.size, bit_width)] = the low bit_width bits of the runs
    elements[run_source[r] :][: run_length[r]] one after another (scratch.size elements in all,
    gathered there first), MSB first, the last byte zero-padded; out has SPARE bytes more.
    Indices and widths are uint64 (numba checks signed indices for wrap-around, which keeps the
    loops from vectorising: 5x slower)."""
    at = _U(0)
    for r in range(run_source.size):
        source, length = run_source[r], run_length[r]
        for i in range(length):
            scratch[at + i] = elements[source + i]
        at += length
    b = bit_width
    at = _U(0)
    size = _U(scratch.size)
    if b <= _U(8):
        # 8 elements at a time, as one little-endian word (element j in byte j): merged in
        # three steps of neighbouring lanes, each element above its successor, into the word's
        # low 8b bits, then written big-endian, b bytes (the rest is overwritten next)
        low, merge1, merge2, merge4 = _lanes(b, 8), _lanes(8, 16), _lanes(16, 32), _lanes(32, 64)
        groups = size // _U(8)
        words = scratch[: groups * _U(8)].view(np.uint64)
        last = _U(0)  # the last, short group: its elements, zeros after them
        for j in range(size - groups * _U(8)):
            last |= _U(scratch[groups * _U(8) + j]) << (_U(8) * j)
        for group in range(groups + (size % _U(8) > _U(0))):
            word = (words[group] if group < groups else last) & low
            word = ((word & merge1) << b) | ((word >> _U(8)) & merge1)
            word = ((word & merge2) << (_U(2) * b)) | ((word >> _U(16)) & merge2)
            word = (((word & merge4) << (_U(4) * b)) | (word >> _U(32))) << (_U(64) - _U(8) * b)
            for k in range(8):
                out[at + _U(k)] = (word >> _U(56 - 8 * k)) & _U(255)
            at += b
        return
    mask = (_U(1) << b) - _U(1)
    pending, bits = _U(0), _U(0)
    for i in range(size):
        pending = (pending << b) | (_U(scratch[i]) & mask)
        bits += b
        while bits >= _U(8):
            bits -= _U(8)
            out[at] = (pending >> bits) & _U(255)
            at += _U(1)
    if bits:
        out[at] = (pending << (_U(8) - bits)) & _U(255)


@njit(cache=True, nogil=True, boundscheck=False)
def _unpack_runs(data, payload_start, runs_per_payload, run_start, run_length, bit_width, values,
                 received):  # pragma: no cover (compiled)
    """Payload p starts at byte payload_start[p] of data (which has SPARE bytes more) and holds
    the next runs_per_payload[p] runs back to back, bit_width bits per element, MSB first; run r
    fills values[run_start[r] :][: run_length[r]] and sets received there.  values' size is a
    multiple of 8. Indices and widths uint64, as in `_pack_runs`."""
    b = bit_width
    mask = (_U(1) << b) - _U(1)
    spread4, spread2, spread1 = _lanes(_U(4) * b, 64), _lanes(_U(2) * b, 32), _lanes(b, 16)
    words = values.view(np.uint64)  # used for widths up to 8, where values are bytes
    r = 0
    for payload in range(payload_start.size):
        bit = payload_start[payload] * _U(8)
        for _ in range(runs_per_payload[payload]):
            at, length = run_start[r], run_length[r]
            for i in range(length):
                received[at + i] = True
            done = _U(0)
            if b <= _U(8) and bit % _U(8) == _U(0) and at % _U(8) == _U(0):
                # 8 elements at a time: their b bytes in a word's low 8b bits, element 0 highest,
                # spread so that element j lands in byte j (little-endian order), stored at once
                byte = bit // _U(8)
                for group in range(at // _U(8), (at + length) // _U(8)):
                    word = _load_be(data, byte) >> (_U(64) - _U(8) * b)
                    word = (word >> (_U(4) * b)) | ((word & spread4) << _U(32))
                    word = ((word >> (_U(2) * b)) & spread2) | ((word & spread2) << _U(16))
                    words[group] = ((word >> b) & spread1) | ((word & spread1) << _U(8))
                    byte += b
                done = length - length % _U(8)
            for i in range(done, length):
                first = (bit + i * b) >> _U(3)
                window = (_U(data[first]) << _U(16)) | (_U(data[first + _U(1)]) << _U(8)) | _U(data[first + _U(2)])
                values[at + i] = (window >> (_U(24) - b - ((bit + i * b) & _U(7)))) & mask
            bit += length * b
            r += 1


@njit(cache=True, nogil=True, inline="always")
def _read_be(data, at, size):  # pragma: no cover (compiled)
    """data[at : at + size] as a big-endian int64: a header field (up to 4 bytes), in signed
    arithmetic like the checks that use it (`_load_be` reads whole words, unsigned)."""
    value = 0
    for k in range(size):
        value = (value << 8) | np.int64(data[at + k])
    return value


@njit(cache=True, nogil=True, boundscheck=False)
def _check_run(data, lengths, datagram_count, unit_count, unit_size, bit_width, seen, unit_parts, index, id_count,
               sub_index, sub_count, ids):  # pragma: no cover (compiled)
    """The reassembler's `_check_run`, datagram by datagram over the run's bytes laid end to end
    (data; each datagram lengths[i] long, CRCs already checked, frame of uniform unit_size):
    fills index, id_count, sub_index, sub_count (per datagram) and ids (the unit ids, datagram
    after datagram); the number of ids and the elements carried, or (-1, 0) when any datagram
    fails a check."""
    count = lengths.size
    total, elements, start = 0, 0, 0
    for i in range(count):
        length = lengths[i]
        tail = start + FRAME_WIDE_SIZE
        if data[tail + 1] != 0:  # reserved
            return -1, 0
        index[i], sub_index[i], sub_count[i] = _read_be(data, tail + 2, 2), _read_be(data, tail + 4, 2), _read_be(
            data, tail + 6, 2)
        id_count[i], payload_len = _read_be(data, tail + 8, 2), _read_be(data, tail + 10, 2)
        ids_here, cut, part = id_count[i], sub_count[i], sub_index[i]
        if (length != HEADER_SIZE + UNIT_ID_SIZE * ids_here + payload_len + CRC_SIZE or index[i] >= datagram_count
                or ids_here == 0 or cut == 0 or part >= cut or (cut > 1 and ids_here != 1) or ids_here > unit_count):
            return -1, 0
        previous = -1
        for k in range(ids_here):
            unit = _read_be(data, start + HEADER_SIZE + UNIT_ID_SIZE * k, UNIT_ID_SIZE)
            if unit >= unit_count or unit <= previous:  # in range, strictly ascending
                return -1, 0
            ids[total + k] = unit
            previous = unit
        if cut > 1:
            if cut > unit_size:
                return -1, 0
            carried = unit_size * (part + 1) // cut - unit_size * part // cut
        else:
            carried = unit_size * ids_here
        if payload_len != (carried * bit_width + 7) // 8:
            return -1, 0
        total += ids_here
        elements += carried
        start += length
    # repeats: of what the frame holds, and within the run
    taken = np.zeros(datagram_count, np.bool_)
    for i in range(count):
        if seen[index[i]] or taken[index[i]]:
            return -1, 0
        taken[index[i]] = True
    # a unit at most once whole, never both whole and sliced, each slice once, cut one way
    whole = np.zeros(unit_count, np.bool_)
    at = 0
    for i in range(count):
        if sub_count[i] == 1:
            for k in range(at, at + id_count[i]):
                if unit_parts[ids[k]] != 0 or whole[ids[k]]:
                    return -1, 0
                whole[ids[k]] = True
        at += id_count[i]
    cuts = np.zeros(unit_count, np.int64)
    keys = np.empty(count, np.int64)
    slices, at = 0, 0
    for i in range(count):
        if sub_count[i] > 1:
            unit = ids[at]
            if whole[unit] or (unit_parts[unit] != 0 and unit_parts[unit] != sub_count[i]):
                return -1, 0
            if cuts[unit] != 0 and cuts[unit] != sub_count[i]:
                return -1, 0
            cuts[unit] = sub_count[i]
            keys[slices] = unit * 65536 + sub_index[i]
            slices += 1
        at += id_count[i]
    keys = np.sort(keys[:slices])
    for k in range(1, slices):
        if keys[k] == keys[k - 1]:
            return -1, 0
    return total, elements


def check_run(data: bytes, lengths: np.ndarray, datagram_count: int, unit_count: int, unit_size: int,
              bit_width: int, seen: np.ndarray, unit_parts: np.ndarray) -> tuple | None:
    """The reassembler's `_check_run` on a run's datagrams joined end to end: the fields of its
    `_Run`, or None when any datagram fails a check."""
    count = lengths.size
    index, id_count, sub_index, sub_count = (np.empty(count, dtype=np.int64) for _ in range(4))
    ids = np.empty((len(data) - count * (HEADER_SIZE + CRC_SIZE)) // UNIT_ID_SIZE, dtype=np.int64)
    total, elements = _check_run(np.frombuffer(data, dtype=np.uint8), lengths, datagram_count, unit_count, unit_size,
                                 bit_width, seen, unit_parts, index, id_count, sub_index, sub_count, ids)
    if total < 0:
        return None
    sliced = sub_count > 1
    if not sliced.any():  # the usual case: no per-datagram masks needed
        empty = np.empty(0, dtype=np.int64)
        return index, id_count, sliced, elements, ids[:total], empty, empty, empty
    if sliced.all():
        return index, id_count, sliced, elements, np.empty(0, dtype=np.int64), ids[:total], sub_index, sub_count
    whole_datagram = np.repeat(~sliced, id_count)
    return (index, id_count, sliced, elements, ids[:total][whole_datagram], ids[:total][~whole_datagram],
            sub_index[sliced], sub_count[sliced])


def pack_runs(elements: np.ndarray, run_source: np.ndarray, run_length: np.ndarray, bit_width: int) -> bytes:
    """`bitpack.pack` of the runs elements[run_source[r] :][: run_length[r]], one after another."""
    scratch = np.empty(int(run_length.sum()), dtype=bitpack.element_dtype(bit_width, signed=False))
    out = np.empty(bitpack.packed_size(scratch.size, bit_width) + SPARE, dtype=np.uint8)
    _pack_runs(_unsigned(elements, bit_width), run_source.astype(np.uint64), run_length.astype(np.uint64),
               np.uint64(bit_width), scratch, out)
    return out[: out.size - SPARE].tobytes()


def unpack_runs(payloads: list[bytes], runs_per_payload: np.ndarray, run_start: np.ndarray, run_length: np.ndarray,
                bit_width: int, signed: bool, size: int) -> tuple[np.ndarray, np.ndarray]:
    """A frame's `size` values (`bitpack.element_dtype`; 0 where nothing arrived) and received
    mask from its payloads: each holds its next runs_per_payload[p] runs back to back, run r the
    run_length[r] elements from position run_start[r] on. Runs must fit their payloads and the
    frame, and not overlap (the reassembler's checks guarantee it)."""
    buffer = np.frombuffer(b"".join([*payloads, bytes(SPARE)]), dtype=np.uint8)  # joined once, SPARE zeros after
    payload_bytes = np.fromiter(map(len, payloads), dtype=np.int64, count=len(payloads))
    values = np.zeros(-(-size // 8) * 8, dtype=bitpack.element_dtype(bit_width, signed=False))
    received = np.zeros(size, dtype=bool)
    _unpack_runs(buffer, (np.cumsum(payload_bytes) - payload_bytes).astype(np.uint64), runs_per_payload,
                 run_start.astype(np.uint64), run_length.astype(np.uint64), np.uint64(bit_width), values, received)
    return (bitpack.as_signed(values[:size], bit_width) if signed else values[:size]), received


def _unsigned(elements: np.ndarray, bit_width: int) -> np.ndarray:
    """The elements' low bits as uint8 / uint16 (a view when they have that size already)."""
    unsigned = bitpack.element_dtype(bit_width, signed=False)
    if elements.dtype.itemsize == unsigned.itemsize:
        return elements.view(unsigned)
    return elements.astype(unsigned)  # wraps around: the low bits stay


def warm_up() -> None:
    """Compile (or load from the cache) every form the engine calls, before data arrives."""
    one, start = np.ones(1, dtype=np.int64), np.zeros(1, dtype=np.int64)
    for bit_width in (6, 12):
        dtype = bitpack.element_dtype(bit_width, signed=False)
        pack_runs(np.zeros(1, dtype=dtype), start, one, bit_width)
        unpack_runs([bytes(2)], one, start, one, bit_width, False, 1)
    check_run(bytes(HEADER_SIZE + CRC_SIZE), np.array([HEADER_SIZE + CRC_SIZE]), 1, 1, 1, 6, np.zeros(1, dtype=bool),
              np.zeros(1, dtype=np.uint16))
