"""Atomic memory operations on numpy array elements, callable from numba nopython code.

Why: a jitted loop that polls a plain array element (`while a[i] == 0: pass`) lets LLVM
hoist the load out of the loop, and the loop never ends. These intrinsics emit LLVM atomic
instructions with explicit ordering, so polling sees other processes' writes and the data
written before a release store is visible after the matching acquire load.

All functions take an array and an element index. For byte regions, take a typed view
first (`region.view(np.uint64)`; offsets must be aligned to the element size).
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic


def _element_pointer(context, builder, aryty, ary_val, idxty, idx_val):
    ary = context.make_array(aryty)(context, builder, ary_val)
    idx = context.cast(builder, idx_val, idxty, types.intp)
    return cgutils.get_item_pointer(context, builder, aryty, ary, [idx], wraparound=False)


@intrinsic
def address_to_voidptr(typingctx, addr):
    """An integer address as a `void*` (for libc calls and numba.carray over foreign memory)."""
    if not isinstance(addr, types.Integer):
        return None

    def codegen(context, builder, sig, args):
        return builder.inttoptr(args[0], cgutils.voidptr_t)

    return types.voidptr(addr), codegen


def _check(arr, idx) -> bool:
    return (
        isinstance(arr, types.Array)
        and isinstance(arr.dtype, types.Integer)
        and isinstance(idx, types.Integer)
    )


@intrinsic
def load_acquire(typingctx, arr, idx):
    """arr[idx] read with acquire ordering (never hoisted out of a loop)."""
    if not _check(arr, idx):
        return None

    def codegen(context, builder, sig, args):
        ptr = _element_pointer(context, builder, sig.args[0], args[0], sig.args[1], args[1])
        return builder.load_atomic(ptr, "acquire", arr.dtype.bitwidth // 8)

    return arr.dtype(arr, idx), codegen


@intrinsic
def load_relaxed(typingctx, arr, idx):
    """arr[idx] read atomically with no ordering (still re-read on every loop iteration)."""
    if not _check(arr, idx):
        return None

    def codegen(context, builder, sig, args):
        ptr = _element_pointer(context, builder, sig.args[0], args[0], sig.args[1], args[1])
        return builder.load_atomic(ptr, "monotonic", arr.dtype.bitwidth // 8)

    return arr.dtype(arr, idx), codegen


@intrinsic
def store_release(typingctx, arr, idx, value):
    """arr[idx] = value with release ordering: earlier writes are visible first."""
    if not _check(arr, idx):
        return None

    def codegen(context, builder, sig, args):
        ptr = _element_pointer(context, builder, sig.args[0], args[0], sig.args[1], args[1])
        val = context.cast(builder, args[2], sig.args[2], arr.dtype)
        builder.store_atomic(val, ptr, "release", arr.dtype.bitwidth // 8)
        return context.get_dummy_value()

    return types.void(arr, idx, value), codegen


@intrinsic
def fetch_add(typingctx, arr, idx, value):
    """Atomically arr[idx] += value (sequentially consistent); returns the old value."""
    if not _check(arr, idx):
        return None

    def codegen(context, builder, sig, args):
        ptr = _element_pointer(context, builder, sig.args[0], args[0], sig.args[1], args[1])
        val = context.cast(builder, args[2], sig.args[2], arr.dtype)
        return builder.atomic_rmw("add", ptr, val, "seq_cst")

    return arr.dtype(arr, idx, value), codegen


@intrinsic
def compare_exchange(typingctx, arr, idx, expected, desired):
    """Atomically: if arr[idx] == expected, store desired. Returns the value seen before."""
    if not _check(arr, idx):
        return None

    def codegen(context, builder, sig, args):
        ptr = _element_pointer(context, builder, sig.args[0], args[0], sig.args[1], args[1])
        exp = context.cast(builder, args[2], sig.args[2], arr.dtype)
        new = context.cast(builder, args[3], sig.args[3], arr.dtype)
        pair = builder.cmpxchg(ptr, exp, new, "seq_cst", "seq_cst")
        return builder.extract_value(pair, 0)

    return arr.dtype(arr, idx, expected, desired), codegen


@intrinsic
def full_fence(typingctx):
    """A sequentially consistent fence (orders a store before a later load, e.g. Dekker)."""

    def codegen(context, builder, sig, args):
        builder.fence("seq_cst")
        return context.get_dummy_value()

    return types.void(), codegen


@intrinsic
def cpu_relax(typingctx):
    """The x86 `pause` hint for spin loops (saves power, yields the sibling hyperthread)."""

    def codegen(context, builder, sig, args):
        # numba's JIT cannot assemble inline asm; the x86 intrinsic emits the same instruction.
        fnty = ir.FunctionType(ir.VoidType(), [])
        pause = cgutils.get_or_insert_function(builder.module, fnty, "llvm.x86.sse2.pause")
        builder.call(pause, [])
        return context.get_dummy_value()

    return types.void(), codegen
