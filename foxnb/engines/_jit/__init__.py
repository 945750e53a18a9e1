"""WaterFox's code generation: numba's front end, ThunderFox's LLVM pipeline."""
