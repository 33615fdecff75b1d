"""Winograd's transforms as straight-line loops (see ops/winograd_codegen.py, which writes this file).

Generated: do not edit; change the generator and run `python -m chainrule.ops.winograd_codegen`.
"""
from numba import njit, uint64

_JIT = dict(nogil=True, cache=True)

BT, B, AT, A = 0, 1, 2, 3    # the roles: V = B^T d B, dd = B dV B^T, y = A^T M A, dM = A dY A^T


@njit(**_JIT)
def bt_5x5(mat, d, out):
    """out = mat @ d for the 5x5 B^T of F(3, 3)."""
    x0, x1, x2, x3, x4 = d[0], d[1], d[2], d[3], d[4]
    y0 = out[0]
    y1 = out[1]
    y2 = out[2]
    y3 = out[3]
    y4 = out[4]
    c0_0 = mat[0, 0]
    c1_1 = mat[1, 1]
    c2_1 = mat[2, 1]
    c2_2 = mat[2, 2]
    c4_1 = mat[4, 1]
    for j in range(uint64(d.shape[1])):
        a0 = x0[j]
        a1 = x1[j]
        a2 = x2[j]
        a3 = x3[j]
        a4 = x4[j]
        y0[j] = a3 + c0_0 * (a0 - a2) - a1
        y1[j] = a3 + c1_1 * a1 - a2
        y2[j] = a3 + c2_1 * a1 + c2_2 * a2
        y3[j] = a3 - a1
        y4[j] = a4 + c4_1 * (a1 - a3) - a2


@njit(**_JIT)
def bt_6x6(mat, d, out):
    """out = mat @ d for the 6x6 B^T of F(4, 3)."""
    x0, x1, x2, x3, x4, x5 = d[0], d[1], d[2], d[3], d[4], d[5]
    y0 = out[0]
    y1 = out[1]
    y2 = out[2]
    y3 = out[3]
    y4 = out[4]
    y5 = out[5]
    c0_0 = mat[0, 0]
    c0_2 = mat[0, 2]
    c1_1 = mat[1, 1]
    c1_2 = mat[1, 2]
    c3_1 = mat[3, 1]
    c5_1 = mat[5, 1]
    c5_3 = mat[5, 3]
    for j in range(uint64(d.shape[1])):
        a0 = x0[j]
        a1 = x1[j]
        a2 = x2[j]
        a3 = x3[j]
        a4 = x4[j]
        a5 = x5[j]
        e1 = a4 + c1_2 * a2
        o1 = a3 + c1_1 * a1
        y1[j] = e1 + o1
        y2[j] = e1 - o1
        e3 = a4 - a2
        o3 = c3_1 * (a1 - a3)
        y3[j] = e3 + o3
        y4[j] = e3 - o3
        y0[j] = a4 + c0_0 * a0 + c0_2 * a2
        y5[j] = a5 + c5_1 * a1 + c5_3 * a3


@njit(**_JIT)
def bt_8x8(mat, d, out):
    """out = mat @ d for the 8x8 B^T of F(6, 3), F(4, 5)."""
    x0, x1, x2, x3, x4, x5, x6, x7 = d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]
    y0 = out[0]
    y1 = out[1]
    y2 = out[2]
    y3 = out[3]
    y4 = out[4]
    y5 = out[5]
    y6 = out[6]
    y7 = out[7]
    c0_2 = mat[0, 2]
    c1_3 = mat[1, 3]
    c1_4 = mat[1, 4]
    c3_1 = mat[3, 1]
    c3_2 = mat[3, 2]
    c3_3 = mat[3, 3]
    c3_4 = mat[3, 4]
    c3_5 = mat[3, 5]
    c5_1 = mat[5, 1]
    c5_2 = mat[5, 2]
    c5_3 = mat[5, 3]
    c5_4 = mat[5, 4]
    c5_5 = mat[5, 5]
    c7_3 = mat[7, 3]
    for j in range(uint64(d.shape[1])):
        a0 = x0[j]
        a1 = x1[j]
        a2 = x2[j]
        a3 = x3[j]
        a4 = x4[j]
        a5 = x5[j]
        a6 = x6[j]
        a7 = x7[j]
        e1 = a2 + a6 + c1_4 * a4
        o1 = a1 + a5 + c1_3 * a3
        y1[j] = e1 + o1
        y2[j] = e1 - o1
        e3 = a6 + c3_2 * a2 + c3_4 * a4
        o3 = c3_1 * a1 + c3_5 * a5 + c3_3 * a3
        y3[j] = e3 + o3
        y4[j] = e3 - o3
        e5 = a6 + c5_2 * a2 + c5_4 * a4
        o5 = c5_5 * a5 + c5_1 * a1 + c5_3 * a3
        y5[j] = e5 + o5
        y6[j] = e5 - o5
        y0[j] = a6 + c0_2 * (a2 - a4) - a0
        y7[j] = a7 + c7_3 * (a3 - a5) - a1


@njit(**_JIT)
def b_5x5(mat, d, out):
    """out = mat @ d for the 5x5 B of F(3, 3)."""
    x0, x1, x2, x3, x4 = d[0], d[1], d[2], d[3], d[4]
    y0 = out[0]
    y1 = out[1]
    y2 = out[2]
    y3 = out[3]
    y4 = out[4]
    c0_0 = mat[0, 0]
    c1_1 = mat[1, 1]
    c2_0 = mat[2, 0]
    c2_2 = mat[2, 2]
    c3_4 = mat[3, 4]
    for j in range(uint64(d.shape[1])):
        a0 = x0[j]
        a1 = x1[j]
        a2 = x2[j]
        a3 = x3[j]
        a4 = x4[j]
        y0[j] = c0_0 * a0
        y1[j] = c1_1 * (a1 - a2 - a4) - a0 - a3
        y2[j] = c2_0 * a0 + c2_2 * a2 - a1 - a4
        y3[j] = a0 + a1 + a2 + a3 + c3_4 * a4
        y4[j] = a4


@njit(**_JIT)
def b_6x6(mat, d, out):
    """out = mat @ d for the 6x6 B of F(4, 3)."""
    x0, x1, x2, x3, x4, x5 = d[0], d[1], d[2], d[3], d[4], d[5]
    y0 = out[0]
    y1 = out[1]
    y2 = out[2]
    y3 = out[3]
    y4 = out[4]
    y5 = out[5]
    c0_0 = mat[0, 0]
    c1_1 = mat[1, 1]
    c1_3 = mat[1, 3]
    c2_0 = mat[2, 0]
    c2_1 = mat[2, 1]
    c3_3 = mat[3, 3]
    c3_5 = mat[3, 5]
    for j in range(uint64(d.shape[1])):
        a0 = x0[j]
        a1 = x1[j]
        a2 = x2[j]
        a3 = x3[j]
        a4 = x4[j]
        a5 = x5[j]
        s1 = a1 + a2
        t1 = a1 - a2
        s3 = a3 + a4
        t3 = a3 - a4
        y0[j] = c0_0 * a0
        y1[j] = c1_3 * t3 + c1_1 * (t1 - a5)
        y2[j] = c2_1 * s1 + c2_0 * a0 - s3
        y3[j] = t1 + c3_3 * t3 + c3_5 * a5
        y4[j] = a0 + s1 + s3
        y5[j] = a5


@njit(**_JIT)
def b_8x8(mat, d, out):
    """out = mat @ d for the 8x8 B of F(6, 3), F(4, 5)."""
    x0, x1, x2, x3, x4, x5, x6, x7 = d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]
    y0 = out[0]
    y1 = out[1]
    y2 = out[2]
    y3 = out[3]
    y4 = out[4]
    y5 = out[5]
    y6 = out[6]
    y7 = out[7]
    c1_3 = mat[1, 3]
    c1_5 = mat[1, 5]
    c2_0 = mat[2, 0]
    c2_3 = mat[2, 3]
    c2_5 = mat[2, 5]
    c3_1 = mat[3, 1]
    c3_3 = mat[3, 3]
    c3_7 = mat[3, 7]
    c4_0 = mat[4, 0]
    c4_1 = mat[4, 1]
    c4_3 = mat[4, 3]
    c4_5 = mat[4, 5]
    c5_3 = mat[5, 3]
    c5_5 = mat[5, 5]
    c5_7 = mat[5, 7]
    for j in range(uint64(d.shape[1])):
        a0 = x0[j]
        a1 = x1[j]
        a2 = x2[j]
        a3 = x3[j]
        a4 = x4[j]
        a5 = x5[j]
        a6 = x6[j]
        a7 = x7[j]
        s1 = a1 + a2
        t1 = a1 - a2
        s3 = a3 + a4
        t3 = a3 - a4
        s5 = a5 + a6
        t5 = a5 - a6
        y0[j] = -a0
        y1[j] = t1 + c1_3 * t3 + c1_5 * t5 - a7
        y2[j] = s1 + c2_3 * s3 + c2_5 * s5 + c2_0 * a0
        y3[j] = c3_3 * (t3 + t5) + c3_1 * t1 + c3_7 * a7
        y4[j] = c4_3 * s3 + c4_1 * s1 + c4_5 * s5 + c4_0 * a0
        y5[j] = t1 + c5_5 * t5 + c5_3 * t3 + c5_7 * a7
        y6[j] = a0 + s1 + s3 + s5
        y7[j] = a7


@njit(**_JIT)
def at_3x5(mat, d, out):
    """out = mat @ d for the 3x5 A^T of F(3, 3)."""
    x0, x1, x2, x3, x4 = d[0], d[1], d[2], d[3], d[4]
    y0 = out[0]
    y1 = out[1]
    y2 = out[2]
    c1_3 = mat[1, 3]
    c2_3 = mat[2, 3]
    for j in range(uint64(d.shape[1])):
        a0 = x0[j]
        a1 = x1[j]
        a2 = x2[j]
        a3 = x3[j]
        a4 = x4[j]
        s1 = a1 + a2
        t1 = a1 - a2
        y0[j] = a0 + s1 + a3
        y1[j] = t1 + c1_3 * a3
        y2[j] = s1 + a4 + c2_3 * a3


@njit(**_JIT)
def at_4x6(mat, d, out):
    """out = mat @ d for the 4x6 A^T of F(4, 3)."""
    x0, x1, x2, x3, x4, x5 = d[0], d[1], d[2], d[3], d[4], d[5]
    y0 = out[0]
    y1 = out[1]
    y2 = out[2]
    y3 = out[3]
    c1_3 = mat[1, 3]
    c2_3 = mat[2, 3]
    c3_3 = mat[3, 3]
    for j in range(uint64(d.shape[1])):
        a0 = x0[j]
        a1 = x1[j]
        a2 = x2[j]
        a3 = x3[j]
        a4 = x4[j]
        a5 = x5[j]
        s1 = a1 + a2
        t1 = a1 - a2
        s3 = a3 + a4
        t3 = a3 - a4
        y0[j] = a0 + s1 + s3
        y1[j] = t1 + c1_3 * t3
        y2[j] = s1 + c2_3 * s3
        y3[j] = t1 + a5 + c3_3 * t3


@njit(**_JIT)
def at_4x8(mat, d, out):
    """out = mat @ d for the 4x8 A^T of F(4, 5)."""
    x0, x1, x2, x3, x4, x5, x6, x7 = d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]
    y0 = out[0]
    y1 = out[1]
    y2 = out[2]
    y3 = out[3]
    c1_3 = mat[1, 3]
    c1_5 = mat[1, 5]
    c2_3 = mat[2, 3]
    c2_5 = mat[2, 5]
    c3_3 = mat[3, 3]
    c3_5 = mat[3, 5]
    for j in range(uint64(d.shape[1])):
        a0 = x0[j]
        a1 = x1[j]
        a2 = x2[j]
        a3 = x3[j]
        a4 = x4[j]
        a5 = x5[j]
        a6 = x6[j]
        a7 = x7[j]
        s1 = a1 + a2
        t1 = a1 - a2
        s3 = a3 + a4
        t3 = a3 - a4
        s5 = a5 + a6
        t5 = a5 - a6
        y0[j] = a0 + s1 + s3 + s5
        y1[j] = t1 + c1_5 * t5 + c1_3 * t3
        y2[j] = s1 + c2_5 * s5 + c2_3 * s3
        y3[j] = t1 + a7 + c3_5 * t5 + c3_3 * t3


@njit(**_JIT)
def at_6x8(mat, d, out):
    """out = mat @ d for the 6x8 A^T of F(6, 3)."""
    x0, x1, x2, x3, x4, x5, x6, x7 = d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]
    y0 = out[0]
    y1 = out[1]
    y2 = out[2]
    y3 = out[3]
    y4 = out[4]
    y5 = out[5]
    c1_3 = mat[1, 3]
    c1_5 = mat[1, 5]
    c2_3 = mat[2, 3]
    c2_5 = mat[2, 5]
    c3_3 = mat[3, 3]
    c3_5 = mat[3, 5]
    c4_3 = mat[4, 3]
    c4_5 = mat[4, 5]
    c5_3 = mat[5, 3]
    c5_5 = mat[5, 5]
    for j in range(uint64(d.shape[1])):
        a0 = x0[j]
        a1 = x1[j]
        a2 = x2[j]
        a3 = x3[j]
        a4 = x4[j]
        a5 = x5[j]
        a6 = x6[j]
        a7 = x7[j]
        s1 = a1 + a2
        t1 = a1 - a2
        s3 = a3 + a4
        t3 = a3 - a4
        s5 = a5 + a6
        t5 = a5 - a6
        y0[j] = a0 + s1 + s3 + s5
        y1[j] = t1 + c1_5 * t5 + c1_3 * t3
        y2[j] = s1 + c2_5 * s5 + c2_3 * s3
        y3[j] = t1 + c3_5 * t5 + c3_3 * t3
        y4[j] = s1 + c4_5 * s5 + c4_3 * s3
        y5[j] = t1 + a7 + c5_5 * t5 + c5_3 * t3


@njit(**_JIT)
def a_5x3(mat, d, out):
    """out = mat @ d for the 5x3 A of F(3, 3)."""
    x0, x1, x2 = d[0], d[1], d[2]
    y0 = out[0]
    y1 = out[1]
    y2 = out[2]
    y3 = out[3]
    y4 = out[4]
    c3_1 = mat[3, 1]
    c3_2 = mat[3, 2]
    for j in range(uint64(d.shape[1])):
        a0 = x0[j]
        a1 = x1[j]
        a2 = x2[j]
        e1 = a0 + a2
        o1 = a1
        y1[j] = e1 + o1
        y2[j] = e1 - o1
        y0[j] = a0
        y3[j] = a0 + c3_1 * a1 + c3_2 * a2
        y4[j] = a2


@njit(**_JIT)
def a_6x4(mat, d, out):
    """out = mat @ d for the 6x4 A of F(4, 3)."""
    x0, x1, x2, x3 = d[0], d[1], d[2], d[3]
    y0 = out[0]
    y1 = out[1]
    y2 = out[2]
    y3 = out[3]
    y4 = out[4]
    y5 = out[5]
    c3_1 = mat[3, 1]
    c3_2 = mat[3, 2]
    c3_3 = mat[3, 3]
    for j in range(uint64(d.shape[1])):
        a0 = x0[j]
        a1 = x1[j]
        a2 = x2[j]
        a3 = x3[j]
        e1 = a0 + a2
        o1 = a1 + a3
        y1[j] = e1 + o1
        y2[j] = e1 - o1
        e3 = a0 + c3_2 * a2
        o3 = c3_1 * a1 + c3_3 * a3
        y3[j] = e3 + o3
        y4[j] = e3 - o3
        y0[j] = a0
        y5[j] = a3


@njit(**_JIT)
def a_8x4(mat, d, out):
    """out = mat @ d for the 8x4 A of F(4, 5)."""
    x0, x1, x2, x3 = d[0], d[1], d[2], d[3]
    y0 = out[0]
    y1 = out[1]
    y2 = out[2]
    y3 = out[3]
    y4 = out[4]
    y5 = out[5]
    y6 = out[6]
    y7 = out[7]
    c3_1 = mat[3, 1]
    c3_2 = mat[3, 2]
    c3_3 = mat[3, 3]
    c5_1 = mat[5, 1]
    c5_2 = mat[5, 2]
    c5_3 = mat[5, 3]
    for j in range(uint64(d.shape[1])):
        a0 = x0[j]
        a1 = x1[j]
        a2 = x2[j]
        a3 = x3[j]
        e1 = a0 + a2
        o1 = a1 + a3
        y1[j] = e1 + o1
        y2[j] = e1 - o1
        e3 = a0 + c3_2 * a2
        o3 = c3_1 * a1 + c3_3 * a3
        y3[j] = e3 + o3
        y4[j] = e3 - o3
        e5 = a0 + c5_2 * a2
        o5 = c5_3 * a3 + c5_1 * a1
        y5[j] = e5 + o5
        y6[j] = e5 - o5
        y0[j] = a0
        y7[j] = a3


@njit(**_JIT)
def a_8x6(mat, d, out):
    """out = mat @ d for the 8x6 A of F(6, 3)."""
    x0, x1, x2, x3, x4, x5 = d[0], d[1], d[2], d[3], d[4], d[5]
    y0 = out[0]
    y1 = out[1]
    y2 = out[2]
    y3 = out[3]
    y4 = out[4]
    y5 = out[5]
    y6 = out[6]
    y7 = out[7]
    c3_1 = mat[3, 1]
    c3_2 = mat[3, 2]
    c3_3 = mat[3, 3]
    c3_4 = mat[3, 4]
    c3_5 = mat[3, 5]
    c5_1 = mat[5, 1]
    c5_2 = mat[5, 2]
    c5_3 = mat[5, 3]
    c5_4 = mat[5, 4]
    c5_5 = mat[5, 5]
    for j in range(uint64(d.shape[1])):
        a0 = x0[j]
        a1 = x1[j]
        a2 = x2[j]
        a3 = x3[j]
        a4 = x4[j]
        a5 = x5[j]
        e1 = a0 + a2 + a4
        o1 = a1 + a3 + a5
        y1[j] = e1 + o1
        y2[j] = e1 - o1
        e3 = a0 + c3_2 * a2 + c3_4 * a4
        o3 = c3_1 * a1 + c3_3 * a3 + c3_5 * a5
        y3[j] = e3 + o3
        y4[j] = e3 - o3
        e5 = a0 + c5_4 * a4 + c5_2 * a2
        o5 = c5_5 * a5 + c5_3 * a3 + c5_1 * a1
        y5[j] = e5 + o5
        y6[j] = e5 - o5
        y0[j] = a0
        y7[j] = a5


@njit(**_JIT)
def apply(role, mat, d, out):
    """out = mat @ d by the codelet for `role` and mat's shape; False when there is none."""
    rows, cols = mat.shape
    if role == 0 and rows == 5 and cols == 5:
        bt_5x5(mat, d, out)
        return True
    if role == 0 and rows == 6 and cols == 6:
        bt_6x6(mat, d, out)
        return True
    if role == 0 and rows == 8 and cols == 8:
        bt_8x8(mat, d, out)
        return True
    if role == 1 and rows == 5 and cols == 5:
        b_5x5(mat, d, out)
        return True
    if role == 1 and rows == 6 and cols == 6:
        b_6x6(mat, d, out)
        return True
    if role == 1 and rows == 8 and cols == 8:
        b_8x8(mat, d, out)
        return True
    if role == 2 and rows == 3 and cols == 5:
        at_3x5(mat, d, out)
        return True
    if role == 2 and rows == 4 and cols == 6:
        at_4x6(mat, d, out)
        return True
    if role == 2 and rows == 4 and cols == 8:
        at_4x8(mat, d, out)
        return True
    if role == 2 and rows == 6 and cols == 8:
        at_6x8(mat, d, out)
        return True
    if role == 3 and rows == 5 and cols == 3:
        a_5x3(mat, d, out)
        return True
    if role == 3 and rows == 6 and cols == 4:
        a_6x4(mat, d, out)
        return True
    if role == 3 and rows == 8 and cols == 4:
        a_8x4(mat, d, out)
        return True
    if role == 3 and rows == 8 and cols == 6:
        a_8x6(mat, d, out)
        return True
    return False
