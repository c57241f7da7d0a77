"""The fused GPU kernels' C source, and the code that wraps it for CUDA or for a C compiler.

Every kernel is an *element function*: the work of one output element (or one row) `i`,
written in the common subset of C and CUDA C++ with the element type `T` and the index type
`I` left as typedefs. `cuda_source` wraps it in a grid-stride `__global__` loop for CuPy's
`RawModule` (NVRTC); `cpu_source` wraps it in a plain `for` loop, so the very same index
arithmetic can be compiled with a C compiler and checked against NumPy on a machine without a
GPU (the tests do this). Arrays are passed with their strides in elements, so any memory
order works without copies; outputs are written in the order of `i` (channels-last when the
caller allocates them so, which keeps the writes coalesced).

Index decomposition used by the pooling, LRN and concat kernels: `i` walks an (N, H, W, C)
grid with C fastest, i.e. the channels-last memory order of minigraph's activations.
"""
from __future__ import annotations

import dataclasses
from typing import Dict, List, Sequence, Tuple

# parameter kinds -> C types ("T", "I" are typedefs of the compiled variant)
CTYPES = {"in": "const T*", "out": "T*", "idx_in": "const I*", "idx_out": "I*",
          "labels": "const long long*", "long": "long long", "real": "T"}


@dataclasses.dataclass(frozen=True)
class KernelSpec:
    """One element-wise (or row-wise) kernel: its name, its parameters as (kind, name) pairs
    (kinds in `CTYPES`), and the C body of its element function, which reads `i`."""

    name: str
    params: Tuple[Tuple[str, str], ...]
    body: str

    def signature(self) -> str:
        return ", ".join(f"{CTYPES[k]} {n}" for k, n in self.params)

    def arg_names(self) -> str:
        return ", ".join(n for _, n in self.params)


def _strides(prefix: str) -> Tuple[Tuple[str, str], ...]:
    return tuple(("long", f"{prefix}{d}") for d in "NCHW")


def _at(array: str, prefix: str, n: str, c: str, h: str, w: str) -> str:
    return f"{array}[{n} * {prefix}N + {c} * {prefix}C + {h} * {prefix}H + {w} * {prefix}W]"


_NHWC_INDEX = """
    long long c = i % C; long long t = i / C;
    long long {w} = t % {W}; t /= {W};
    long long {h} = t % {H}; long long n = t / {H};
"""

_WINDOW = (("long", "KH"), ("long", "KW"), ("long", "SH"), ("long", "SW"), ("long", "PT"), ("long", "PL"))

MAX_POOL = KernelSpec(
    "max_pool_fwd",
    (("in", "x"), ("out", "y"), ("long", "C"), ("long", "H"), ("long", "W"), ("long", "OH"), ("long", "OW"))
    + _WINDOW + _strides("X") + _strides("Y"),
    _NHWC_INDEX.format(h="oh", w="ow", H="OH", W="OW") + """
    long long h0 = oh * SH - PT, w0 = ow * SW - PL;
    T best = 0; int found = 0;
    for (long long a = 0; a < KH; ++a) {
        long long h = h0 + a;
        if (h < 0 || h >= H) continue;
        for (long long b = 0; b < KW; ++b) {
            long long w = w0 + b;
            if (w < 0 || w >= W) continue;
            T v = """ + _at("x", "X", "n", "c", "h", "w") + """;
            if (!found || v > best || v != v) { if (best == best) best = v; found = 1; }
        }
    }
    """ + _at("y", "Y", "n", "c", "oh", "ow") + " = best;\n")

MAX_POOL_ARGMAX = KernelSpec(
    "max_pool_argmax",
    (("in", "x"), ("in", "y"), ("idx_out", "idx"), ("long", "C"), ("long", "H"), ("long", "W"),
     ("long", "OH"), ("long", "OW")) + _WINDOW + _strides("X") + _strides("Y") + _strides("D"),
    _NHWC_INDEX.format(h="oh", w="ow", H="OH", W="OW") + """
    long long h0 = oh * SH - PT, w0 = ow * SW - PL;
    T best = """ + _at("y", "Y", "n", "c", "oh", "ow") + """;
    long long k = KH * KW - 1;
    int done = 0;
    for (long long a = 0; a < KH && !done; ++a) {
        long long h = h0 + a;
        if (h < 0 || h >= H) continue;
        for (long long b = 0; b < KW; ++b) {
            long long w = w0 + b;
            if (w < 0 || w >= W) continue;
            if (!(""" + _at("x", "X", "n", "c", "h", "w") + """ < best)) { k = a * KW + b; done = 1; break; }
        }
    }
    """ + _at("idx", "D", "n", "c", "oh", "ow") + " = (I)k;\n")

MAX_POOL_GRAD = KernelSpec(
    "max_pool_grad",
    (("idx_in", "idx"), ("in", "g"), ("out", "dx"), ("long", "C"), ("long", "H"), ("long", "W"),
     ("long", "OH"), ("long", "OW")) + _WINDOW + _strides("D") + _strides("G") + _strides("X"),
    _NHWC_INDEX.format(h="h", w="w", H="H", W="W") + """
    T acc = 0;
    for (long long a = 0; a < KH; ++a) {
        long long ph = h + PT - a;
        if (ph < 0 || ph % SH != 0) continue;
        long long oh = ph / SH;
        if (oh >= OH) continue;
        for (long long b = 0; b < KW; ++b) {
            long long pw = w + PL - b;
            if (pw < 0 || pw % SW != 0) continue;
            long long ow = pw / SW;
            if (ow >= OW) continue;
            if ((long long)""" + _at("idx", "D", "n", "c", "oh", "ow") + """ == a * KW + b)
                acc += """ + _at("g", "G", "n", "c", "oh", "ow") + """;
        }
    }
    """ + _at("dx", "X", "n", "c", "h", "w") + " = acc;\n")

MAX_POOL_GRAD_GRAD = KernelSpec(
    "max_pool_grad_grad",
    (("idx_in", "idx"), ("in", "gg"), ("out", "out"), ("long", "C"), ("long", "OH"), ("long", "OW"))
    + _WINDOW + _strides("D") + _strides("G") + _strides("Y"),
    _NHWC_INDEX.format(h="oh", w="ow", H="OH", W="OW") + """
    long long k = (long long)""" + _at("idx", "D", "n", "c", "oh", "ow") + """;
    long long h = oh * SH - PT + k / KW, w = ow * SW - PL + k % KW;
    """ + _at("out", "Y", "n", "c", "oh", "ow") + " = " + _at("gg", "G", "n", "c", "h", "w") + ";\n")

AVG_POOL = KernelSpec(
    "avg_pool_fwd",
    (("in", "x"), ("out", "y"), ("long", "C"), ("long", "H"), ("long", "W"), ("long", "OH"), ("long", "OW"))
    + _WINDOW + (("long", "INCLUDE_PAD"),) + _strides("X") + _strides("Y"),
    _NHWC_INDEX.format(h="oh", w="ow", H="OH", W="OW") + """
    long long h0 = oh * SH - PT, w0 = ow * SW - PL;
    T acc = 0; long long count = 0;
    for (long long a = 0; a < KH; ++a) {
        long long h = h0 + a;
        if (h < 0 || h >= H) continue;
        for (long long b = 0; b < KW; ++b) {
            long long w = w0 + b;
            if (w < 0 || w >= W) continue;
            acc += """ + _at("x", "X", "n", "c", "h", "w") + """;
            ++count;
        }
    }
    """ + _at("y", "Y", "n", "c", "oh", "ow") + " = acc / (T)(INCLUDE_PAD ? KH * KW : count);\n")

AVG_POOL_GRAD = KernelSpec(
    "avg_pool_grad",
    (("in", "g"), ("out", "dx"), ("long", "C"), ("long", "H"), ("long", "W"), ("long", "OH"), ("long", "OW"))
    + _WINDOW + (("long", "INCLUDE_PAD"),) + _strides("G") + _strides("X"),
    _NHWC_INDEX.format(h="h", w="w", H="H", W="W") + """
    T acc = 0;
    for (long long a = 0; a < KH; ++a) {
        long long ph = h + PT - a;
        if (ph < 0 || ph % SH != 0) continue;
        long long oh = ph / SH;
        if (oh >= OH) continue;
        long long h0 = oh * SH - PT;
        long long rows = (h0 + KH < H ? h0 + KH : H) - (h0 > 0 ? h0 : 0);
        for (long long b = 0; b < KW; ++b) {
            long long pw = w + PL - b;
            if (pw < 0 || pw % SW != 0) continue;
            long long ow = pw / SW;
            if (ow >= OW) continue;
            long long w0 = ow * SW - PL;
            long long cols = (w0 + KW < W ? w0 + KW : W) - (w0 > 0 ? w0 : 0);
            acc += """ + _at("g", "G", "n", "c", "oh", "ow") + """ / (T)(INCLUDE_PAD ? KH * KW : rows * cols);
        }
    }
    """ + _at("dx", "X", "n", "c", "h", "w") + " = acc;\n")

_CHANNEL_WINDOW = """
    long long lo = c - BEFORE > 0 ? c - BEFORE : 0;
    long long hi = c + AFTER < C - 1 ? c + AFTER : C - 1;
    T acc = 0;
    for (long long cc = lo; cc <= hi; ++cc) {
        T v = """ + _at("x", "X", "n", "cc", "h", "w") + """;
        acc += {term};
    }
"""

CHANNEL_WINDOW_SUM = KernelSpec(
    "channel_window_sum",
    (("in", "x"), ("out", "y"), ("long", "C"), ("long", "H"), ("long", "W"), ("long", "BEFORE"), ("long", "AFTER"))
    + _strides("X") + _strides("Y"),
    _NHWC_INDEX.format(h="h", w="w", H="H", W="W") + _CHANNEL_WINDOW.replace("{term}", "v")
    + "    " + _at("y", "Y", "n", "c", "h", "w") + " = acc;\n")

LRN = KernelSpec(
    "lrn_fwd",
    (("in", "x"), ("out", "y"), ("long", "C"), ("long", "H"), ("long", "W"), ("long", "BEFORE"), ("long", "AFTER"),
     ("real", "ALPHA_OVER_SIZE"), ("real", "K"), ("real", "BETA")) + _strides("X") + _strides("Y"),
    _NHWC_INDEX.format(h="h", w="w", H="H", W="W") + _CHANNEL_WINDOW.replace("{term}", "v * v") + """
    T s = K + ALPHA_OVER_SIZE * acc;
    """ + _at("y", "Y", "n", "c", "h", "w") + " = " + _at("x", "X", "n", "c", "h", "w") + " * pow(s, -BETA);\n")

# Row kernels: i is a row of an (N, K) matrix with strides (RN, RK).

SOFTMAX_XENT_ROWS = KernelSpec(
    "softmax_xent_rows",
    (("in", "logits"), ("labels", "labels"), ("out", "loss"), ("long", "K"), ("long", "RN"), ("long", "RK")),
    """
    const T* row = logits + i * RN;
    T m = row[0];
    for (long long j = 1; j < K; ++j) { T v = row[j * RK]; if (v > m) m = v; }
    T s = 0;
    for (long long j = 0; j < K; ++j) s += exp(row[j * RK] - m);
    long long label = labels[i];
    T zero = 0;
    loss[i] = (label < 0 || label >= K) ? zero / zero : log(s) + m - row[label * RK];
""")

SOFTMAX_ROWS = KernelSpec(
    "softmax_rows",
    (("in", "x"), ("out", "y"), ("long", "K"), ("long", "RN"), ("long", "RK"), ("long", "YN"), ("long", "YK")),
    """
    const T* row = x + i * RN;
    T m = row[0];
    for (long long j = 1; j < K; ++j) { T v = row[j * RK]; if (v > m) m = v; }
    T s = 0;
    for (long long j = 0; j < K; ++j) { T e = exp(row[j * RK] - m); y[i * YN + j * YK] = e; s += e; }
    for (long long j = 0; j < K; ++j) y[i * YN + j * YK] /= s;
""")


def concat_spec(k: int) -> KernelSpec:
    """Channel concat of `k` inputs (N, C_j, H, W) into y (N, sum C_j, H, W), one element each."""
    params: List[Tuple[str, str]] = [("out", "y"), ("long", "C"), ("long", "H"), ("long", "W")]
    params += list(_strides("Y"))
    for j in range(k):
        params += [("in", f"x{j}"), ("long", f"C{j}")] + list(_strides(f"X{j}_"))
    chain = []
    for j in range(k):
        read = _at(f"x{j}", f"X{j}_", "n", "cc", "h", "w")
        if j < k - 1:
            chain.append(f"if (cc < C{j}) v = {read}; else {{ cc -= C{j};")
        else:
            chain.append(f"v = {read};" + " }" * (k - 1))
    body = (_NHWC_INDEX.format(h="h", w="w", H="H", W="W") + "    long long cc = c; T v;\n    "
            + "\n    ".join(chain) + "\n    " + _at("y", "Y", "n", "c", "h", "w") + " = v;\n")
    return KernelSpec(f"concat{k}", tuple(params), body)


KERNELS: Dict[str, KernelSpec] = {s.name: s for s in (
    MAX_POOL, MAX_POOL_ARGMAX, MAX_POOL_GRAD, MAX_POOL_GRAD_GRAD, AVG_POOL, AVG_POOL_GRAD,
    CHANNEL_WINDOW_SUM, LRN, SOFTMAX_XENT_ROWS, SOFTMAX_ROWS)}

C_TYPES = {"float32": "float", "float64": "double", "uint8": "unsigned char", "int32": "int",
           "int64": "long long"}


def _typedefs(dtype: str, index_dtype: str) -> str:
    return f"typedef {C_TYPES[dtype]} T;\ntypedef {C_TYPES[index_dtype]} I;\n"


def _element_function(spec: KernelSpec, qualifier: str) -> str:
    return f"{qualifier} void {spec.name}_elem(long long i, {spec.signature()}) {{{spec.body}}}\n"


def cuda_source(spec: KernelSpec, dtype: str, index_dtype: str = "int32") -> str:
    """CUDA C++ for NVRTC: the element function and `extern "C" __global__ void <name>(...,
    long long n)`, a grid-stride loop over i in [0, n)."""
    return ("#define pow(a, b) pow((T)(a), (T)(b))\n" + _typedefs(dtype, index_dtype)
            + _element_function(spec, "__device__ __forceinline__")
            + f'extern "C" __global__ void {spec.name}({spec.signature()}, long long n) {{\n'
            + "    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n;"
            + " i += (long long)blockDim.x * gridDim.x)\n"
            + f"        {spec.name}_elem(i, {spec.arg_names()});\n}}\n")


def cpu_source(specs: Sequence[KernelSpec], dtype: str, index_dtype: str = "int32") -> str:
    """Plain C of the same element functions, each behind `void <name>(..., long long n)` that
    loops i over [0, n): compiled with a C compiler, it checks the kernels' arithmetic on a CPU."""
    parts = ["#include <math.h>\n", _typedefs(dtype, index_dtype)]
    for spec in specs:
        parts.append(_element_function(spec, "static inline"))
        parts.append(f"void {spec.name}({spec.signature()}, long long n) {{\n"
                     f"    for (long long i = 0; i < n; ++i) {spec.name}_elem(i, {spec.arg_names()});\n}}\n")
    return "".join(parts)


__all__ = ["KernelSpec", "KERNELS", "CTYPES", "C_TYPES", "concat_spec", "cuda_source", "cpu_source"]
