"""minigraph on NVIDIA GPUs: cuDNN convolutions, fused CuPy kernels and CUDA Graphs.

Everything here is for the CuPy backend and is chosen through the same kernel selection as
any other kernel (`minigraph.dispatch`, algorithms ``cudnn`` and ``fused`` on backend
``cupy``); the generic ``xp`` kernels stay the reference and the fallback. Importing this
package needs neither CuPy nor CUDA: the GPU libraries are imported when a CuPy session first
plans a node.

- `status`: which path this process takes (cuDNN, fused kernels only, generic), said once;
- `conv_desc` / `conv_cudnn`: convolutions as cuDNN problems, plans built once per problem;
- `fused_src` / `fused`: pooling, LRN, softmax (cross-entropy) and concat kernels;
- `graphs`: capture a repeated run into a CUDA graph and replay it.

Switches (environment): MINIGRAPH_CUDNN=0, MINIGRAPH_FUSED=0, MINIGRAPH_CUDA_GRAPHS=0,
MINIGRAPH_CUDNN_LAYOUT=nhwc|nchw, MINIGRAPH_CUDNN_AUTOTUNE=1, MINIGRAPH_TF32=1.
"""
from . import conv_cudnn, fused, graphs, status  # noqa: F401  (registers the kernels)
from .status import cudnn_enabled, fused_enabled, gpu_path

__all__ = ["gpu_path", "cudnn_enabled", "fused_enabled", "status", "graphs", "conv_cudnn", "fused"]
