"""ThunderFox toolchain: numba front end -> LLVM IR -> one shared library with a C ABI.

Private package. Importing it imports neither numba nor llvmlite; those are imported by the
build modules (:mod:`.lower`, :mod:`.cabi`, :mod:`.link`, :mod:`.build`) only. The loader
(:mod:`.loader`) runs in processes that never import numba.
"""
