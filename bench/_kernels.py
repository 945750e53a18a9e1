"""Kernel sources shared by the benchmarks: pairsum and mandel from ../shared/kernels/kernels.py,
verbatim (copied so the benchmarks run in a clone without shared/), and a trivial add."""

KERNELS = '''\
def pairsum(x, n):
    s = 0.0
    for i in range(n):
        xi = x[i]
        for j in range(i + 1, n):
            s += 1.0 / (1.0 + abs(xi - x[j]))
    return s

def mandel(out, w, h, maxiter):
    # out: int32[h*w]; region [-2, 1] x [-1, 1]; returns total iteration count
    tot = 0
    for py in range(h):
        ci = -1.0 + 2.0 * py / (h - 1)
        for px in range(w):
            cr = -2.0 + 3.0 * px / (w - 1)
            zr = 0.0; zi = 0.0; k = 0
            while k < maxiter and zr * zr + zi * zi <= 4.0:
                zr, zi = zr * zr - zi * zi + cr, 2.0 * zr * zi + ci
                k += 1
            out[py * w + px] = k
            tot += k
    return tot
'''

ADD = '''\
def add(a, b):
    return a + b
'''
