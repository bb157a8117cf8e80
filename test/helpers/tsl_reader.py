# Reads a torchts checkpoint (format 2, native/checkpoint_format.h) into Python: the parity tests
# compare our weights with PyTorch's through it. load_tsl(path) -> (meta dict, tensors dict).
import struct

import torch

TSL_TYPES = {1: torch.float32, 2: torch.float64, 3: torch.float16, 4: torch.bfloat16, 5: torch.int64,
             6: torch.int32, 7: torch.int16, 8: torch.int8, 9: torch.uint8, 10: torch.bool}


def load_tsl(path):
    with open(path, 'rb') as f:
        data = f.read()
    assert data[:8] == b'TSCKPT\r\n', f'{path} is not a torchts format 2 checkpoint'
    _version, header_bytes = struct.unpack_from('<II', data, 8)
    header = data[16:16 + header_bytes]
    pos = 0

    def take(fmt):
        nonlocal pos
        (value,) = struct.unpack_from(fmt, header, pos)
        pos += struct.calcsize(fmt)
        return value

    def text():
        nonlocal pos
        n = take('<I')
        pos += n
        return header[pos - n:pos].decode('utf-8')

    meta = {}
    for _ in range(take('<I')):
        key = text()
        meta[key] = text()
    start = (16 + header_bytes + 4 + 63) // 64 * 64
    tensors = {}
    for _ in range(take('<I')):
        name = text()
        dtype = TSL_TYPES[take('<B')]
        dims = [take('<q') for _ in range(take('<B'))]
        offset, nbytes, _crc = take('<Q'), take('<Q'), take('<I')
        raw = bytearray(data[start + offset:start + offset + nbytes])
        tensors[name] = torch.frombuffer(raw, dtype=dtype).reshape(dims) if nbytes else torch.empty(dims, dtype=dtype)
    return meta, tensors
