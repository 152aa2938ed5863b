"""The emulated board runs an aarch64 build through TVM RPC and returns bit-exact results."""

from __future__ import annotations

import numpy as np
import pytest
import tvm
from tvm.script import tirx as T

from tir_armq.board.emulated import run_on_board
from tir_armq.targets import AARCH64_A72

N = 37  # not a multiple of any vector width


def _add(dtype: str, acc: str):
    """c[i] = a[i] + b[i], computed in `acc` and stored as `acc` (no overflow for these inputs)."""

    @T.prim_func(s_tir=True)
    def add(a: T.Buffer((N,), dtype), b: T.Buffer((N,), dtype), c: T.Buffer((N,), acc)):
        T.func_attr({"global_symbol": "add", "tirx.noalias": True})
        for i in range(N):
            with T.sblock("c"):
                vi = T.axis.spatial(N, i)
                c[vi] = T.Cast(acc, a[vi]) + T.Cast(acc, b[vi])

    return add


def _rand(dtype: str, rng: np.random.Generator) -> np.ndarray:
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=N, endpoint=True, dtype=dtype)


@pytest.mark.board
def test_int32_vector_add_exact(board_key):
    rng = np.random.default_rng(0)
    a = rng.integers(-(2**30), 2**30, size=N, dtype="int32")
    b = rng.integers(-(2**30), 2**30, size=N, dtype="int32")
    ex = tvm.compile(_add("int32", "int32"), target=AARCH64_A72.tvm_target())
    a2, b2, c = run_on_board(ex, "add", [a, b, np.zeros(N, "int32")], key=board_key)
    np.testing.assert_array_equal(c, a + b)
    np.testing.assert_array_equal(a2, a)  # inputs come back unchanged
    np.testing.assert_array_equal(b2, b)


@pytest.mark.board
@pytest.mark.parametrize("dtype,acc", [("int8", "int16"), ("uint8", "int16"), ("int16", "int32")])
def test_narrow_dtypes_round_trip(board_key, dtype, acc):
    rng = np.random.default_rng(1)
    a, b = _rand(dtype, rng), _rand(dtype, rng)
    ex = tvm.compile(_add(dtype, acc), target=AARCH64_A72.tvm_target())
    a2, b2, c = run_on_board(ex, "add", [a, b, np.zeros(N, acc)], key=board_key)
    assert a2.dtype == np.dtype(dtype) and c.dtype == np.dtype(acc)
    np.testing.assert_array_equal(a2, a)
    np.testing.assert_array_equal(b2, b)
    np.testing.assert_array_equal(c, a.astype(acc) + b.astype(acc))


def test_servers_started_together_bind_in_disjoint_port_ranges():
    from tir_armq.board.emulated import _server_ports

    ranges = [range(*_server_ports(9190, i)) for i in range(4)]
    assert all(set(a).isdisjoint(b) for i, a in enumerate(ranges) for b in ranges[i + 1:])
    assert all(9190 not in r for r in ranges)
