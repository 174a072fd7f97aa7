"""glibc's allocator tuned for training: once TensorFlow has fixed the thresholds, a tensor-sized
block comes from the heap again instead of an mmap of its own."""

from __future__ import annotations

import subprocess
import sys
import textwrap

PROBE = textwrap.dedent("""
    import ctypes
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, (ctypes.c_size_t,)
    libc.free.argtypes = (ctypes.c_void_p,)

    class Mallinfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in
                    ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                     "uordblks", "fordblks", "keepcost")]

    libc.mallinfo2.restype = Mallinfo2

    def mapped(size=2**20):  # whether a block of `size` bytes is an mmap of its own
        block = libc.malloc(size)
        held = libc.mallinfo2().hblks
        libc.free(block)
        return held - libc.mallinfo2().hblks

    libc.mallopt(-1, 128 * 1024)  # what TensorFlow's generator dataset does
    before = mapped()
    from liverseg.train.allocator import reuse_tensor_memory
    applied = reuse_tensor_memory()
    print(before, applied, mapped(), reuse_tensor_memory())
""")


def test_a_tensor_sized_block_comes_from_the_heap_once_tuned():  # glibc: Linux, as CI
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["1", "True", "0", "True"]
