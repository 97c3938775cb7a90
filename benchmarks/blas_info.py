"""What a benchmark ran on: each library's BLAS/LAPACK, its version, kernel and threads.

A speed figure means little without the kernel that produced it: NumPy's bundled OpenBLAS picks
its kernel (``SkylakeX``, ``Haswell``, ``Zen``...) from the CPU at load time unless the
environment forces one with ``OPENBLAS_CORETYPE``, and a forced kernel can be far from what the
CPU can do. Every benchmark calls :func:`print_environment` first, and :func:`threads_in_effect`
inside each timed setting.

    from blas_info import print_environment
    print_environment("numpy", "torch")   # also "sklearn", "jax"
"""

from __future__ import annotations

import os
import platform
import re
import sys

# Variables that change which BLAS kernel or how many threads run; printed when set.
_BLAS_ENV = (
    "OPENBLAS_CORETYPE",
    "OPENBLAS_L2_SIZE",
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "MKL_ENABLE_INSTRUCTIONS",
    "XLA_FLAGS",
)


def warn_if_kernel_forced(stream=None) -> bool:
    """Warn, in the output beside the figures, when ``OPENBLAS_CORETYPE`` forces OpenBLAS's
    kernel; return whether it is set."""
    forced = os.environ.get("OPENBLAS_CORETYPE")
    if forced:
        print(
            f"WARNING: OPENBLAS_CORETYPE={forced} forces OpenBLAS onto the {forced} kernel, "
            "which may not be the one this CPU would use; the figures below are not what a "
            "user's machine gets. Rerun with `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE ...`.",
            file=stream or sys.stdout,
            flush=True,
        )
    return bool(forced)


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            text = f.read()
    except OSError:
        return platform.processor() or platform.machine()
    name = re.search(r"^model name\s*:\s*(.+)$", text, re.M)
    flags = re.search(r"^flags\s*:\s*(.+)$", text, re.M)
    simd = ""
    if flags:
        have = set(flags.group(1).split())
        simd = "AVX-512" if "avx512f" in have else "AVX2" if "avx2" in have else "no AVX2"
    return f"{name.group(1).strip() if name else platform.machine()}, {simd}"


def threadpool_lines() -> list[str]:
    """One line per native thread pool loaded in this process (OpenBLAS, MKL, OpenMP...)."""
    from threadpoolctl import threadpool_info

    lines = []
    for pool in threadpool_info():
        kernel = pool.get("architecture") or pool.get("threading_layer") or "-"
        lines.append(
            f"{pool['user_api']}: {pool['internal_api']} {pool.get('version') or '?'}, "
            f"kernel {kernel}, {pool['num_threads']} thread(s) "
            f"({os.path.basename(pool['filepath'])})"
        )
    return lines


def numpy_lines() -> list[str]:
    import numpy as np
    from threadpoolctl import threadpool_info

    own = [p for p in threadpool_info() if "numpy" in p["filepath"]]
    lines = [f"NumPy {np.__version__}"]
    for pool in own:
        lines.append(
            f"  {pool['user_api']}/LAPACK: {pool['internal_api']} {pool.get('version')}, "
            f"kernel {pool.get('architecture')}, {pool['num_threads']} thread(s)"
        )
    return lines


def sklearn_lines() -> list[str]:
    import sklearn

    # scikit-learn's MLP runs its products through NumPy (safe_sparse_dot is ``@``), so its
    # BLAS is NumPy's; SciPy brings its own OpenBLAS for LAPACK-based solvers.
    from threadpoolctl import threadpool_info

    lines = [f"scikit-learn {sklearn.__version__} (products through NumPy's BLAS above)"]
    for pool in threadpool_info():
        if "scipy" in pool["filepath"] and "numpy" not in pool["filepath"]:
            lines.append(
                f"  SciPy's {pool['user_api']}: {pool['internal_api']} {pool.get('version')}, "
                f"kernel {pool.get('architecture')}, {pool['num_threads']} thread(s)"
            )
    return lines


def torch_lines() -> list[str]:
    import torch

    config = torch.__config__.show()
    blas = re.search(r"BLAS_INFO=([^,\s]+)", config)
    lapack = re.search(r"LAPACK_INFO=([^,\s]+)", config)
    mkl = re.search(r"Math Kernel Library Version ([^\s]+)", config)
    capability = torch.backends.cpu.get_cpu_capability()
    version = f" {mkl.group(1)}" if mkl and blas and blas.group(1) == "mkl" else ""
    return [
        f"PyTorch {torch.__version__}",
        f"  BLAS: {blas.group(1) if blas else '?'}{version}, LAPACK: "
        f"{lapack.group(1) if lapack else '?'}, kernel (ATen CPU capability) {capability}, "
        f"{torch.get_num_threads()} thread(s)",
    ]


def jax_lines() -> list[str]:
    import jax
    import jaxlib

    devices = ", ".join(str(d) for d in jax.devices())
    return [
        f"JAX {jax.__version__} (jaxlib {jaxlib.__version__}), backend {jax.default_backend()} "
        f"({devices})",
        f"  products: {_xla_dot_kernel()}; threads: XLA's intra-op pool, "
        f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '(unset)')!r}",
    ]


def _xla_dot_kernel() -> str:
    """Which library XLA:CPU hands a float32 product to, read from the compiled HLO."""
    import jax
    import jax.numpy as jnp

    a = jnp.ones((128, 256), jnp.float32)
    text = jax.jit(jnp.matmul).lower(a, a.T).compile().as_text().lower()
    for tag, name in (("ynn", "YNNPACK"), ("xnn", "XNNPACK"), ("onednn", "oneDNN"),
                      ("eigen", "Eigen")):
        if tag in text:
            return f"XLA:CPU via {name} (no system BLAS)"
    return "XLA:CPU's own dot emitter (no system BLAS)"


_DESCRIBE = {"numpy": numpy_lines, "sklearn": sklearn_lines, "torch": torch_lines,
             "jax": jax_lines}


def print_environment(*libraries: str, stream=None) -> None:
    """Print the CPU, the BLAS-related environment and each library's BLAS line(s)."""
    out = stream or sys.stdout
    warn_if_kernel_forced(out)
    print(f"CPU: {_cpu_name()}; {os.cpu_count()} logical CPUs; load average "
          f"{os.getloadavg()[0]:.2f}", file=out)
    env = [f"{k}={os.environ[k]}" for k in _BLAS_ENV if k in os.environ]
    print(f"environment: {' '.join(env) if env else 'no BLAS/thread variables set'}", file=out)
    for lib in ("numpy", *[name for name in libraries if name != "numpy"]):
        try:
            lines = _DESCRIBE[lib]()
        except ImportError:
            lines = [f"{lib}: not installed"]
        for line in lines:
            print(line, file=out)


def threads_in_effect() -> str:
    """The thread counts of the pools loaded now, e.g. inside ``threadpool_limits(1)``."""
    from threadpoolctl import threadpool_info

    def owner(path: str) -> str:
        for name in ("numpy", "scipy", "torch", "sklearn"):
            if name in path:
                return f"{name}'s "
        return ""

    parts = [
        f"{owner(p['filepath'])}{p['internal_api']} {p['num_threads']}" for p in threadpool_info()
    ]
    if "torch" in sys.modules:
        parts.append(f"torch {sys.modules['torch'].get_num_threads()}")
    return ", ".join(parts)
