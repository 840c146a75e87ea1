/* quant.c - scalar reference (de)quantizers for the ggml tensor types. */
#include "llm/quant.h"

#include <math.h>
#include <string.h>

#include "common/status.h"

/* The block structs must be ggml's layouts, as the file format's table
 * (gguf/ggml_type.c) sizes them; test_quant checks size and alignment
 * against that table for every type. */
_Static_assert(sizeof(block_q4_0) == 18 && sizeof(block_q4_1) == 20 && sizeof(block_q5_0) == 22 &&
               sizeof(block_q5_1) == 24 && sizeof(block_q8_0) == 34 && sizeof(block_q4_K) == 144 &&
               sizeof(block_q5_K) == 176 && sizeof(block_q6_K) == 210 && sizeof(block_q8_K) == 292,
               "block layouts must match ggml's");

int quant_supported(int type) {
    switch (type) {
    case GGML_TYPE_F32: case GGML_TYPE_F16: case GGML_TYPE_BF16:
    case GGML_TYPE_Q4_0: case GGML_TYPE_Q4_1: case GGML_TYPE_Q5_0: case GGML_TYPE_Q5_1:
    case GGML_TYPE_Q8_0: case GGML_TYPE_Q4_K: case GGML_TYPE_Q5_K: case GGML_TYPE_Q6_K:
        return 1;
    default:
        return 0;
    }
}

/* ---- half and bfloat16 ---------------------------------------------------- */

float quant_half_to_float(quant_half h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (man << 13); /* inf, nan */
    } else if (exp != 0) {
        bits = sign | ((exp + 112) << 23) | (man << 13);
    } else if (man == 0) {
        bits = sign;
    } else { /* subnormal: normalise */
        int e = -1;
        do {
            man <<= 1;
            e++;
        } while ((man & 0x400) == 0);
        bits = sign | ((uint32_t)(112 - e) << 23) | ((man & 0x3ff) << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

quant_half quant_float_to_half(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000, ax = x & 0x7fffffff;
    if (ax >= 0x7f800000u) /* inf or nan */
        return (quant_half)(sign | 0x7c00 | (ax > 0x7f800000u ? 0x200 : 0));
    if (ax >= 0x477ff000u) /* rounds to beyond the largest half */
        return (quant_half)(sign | 0x7c00);
    if (ax < 0x38800000u) { /* subnormal or zero: round to nearest even */
        if (ax < 0x33000000u)
            return (quant_half)sign;
        uint32_t e = ax >> 23, m = (ax & 0x7fffff) | 0x800000;
        uint32_t shift = 126 - e, r = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1)))
            r++;
        return (quant_half)(sign | r);
    }
    uint32_t r = ax - 0x38000000u, lo = r & 0x1fff; /* rebias; 13 bits to drop */
    r >>= 13;
    if (lo > 0x1000 || (lo == 0x1000 && (r & 1)))
        r++;
    return (quant_half)(sign | r);
}

float quant_bf16_to_float(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t quant_float_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffff) > 0x7f800000u)
        return (uint16_t)((x >> 16) | 64); /* quiet nan */
    return (uint16_t)((x + (0x7fff + ((x >> 16) & 1))) >> 16);
}

#define H(x) quant_half_to_float(x)

/* ---- dequantization ------------------------------------------------------ */

static void get_scale_min_k4(int j, const uint8_t *q, uint8_t *d, uint8_t *m) {
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

/* The scalar reference dequantizer of every type.
 * (long: one case per block format, each the format's layout written out
 * once, as ggml's reference does; a reader checks a case against the spec.) */
void quant_dequantize_row(int type, const void *src, float *y, int64_t n) {
    const int64_t nb = n / (ggml_type_block_size(type) ? ggml_type_block_size(type) : 1);
    switch (type) {
    case GGML_TYPE_F32:
        memcpy(y, src, (size_t)n * sizeof(float));
        break;
    case GGML_TYPE_F16: {
        const uint8_t *p = src;
        for (int64_t i = 0; i < n; i++) {
            quant_half h;
            memcpy(&h, p + 2 * i, 2);
            y[i] = H(h);
        }
        break;
    }
    case GGML_TYPE_BF16: {
        const uint8_t *p = src;
        for (int64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            y[i] = quant_bf16_to_float(h);
        }
        break;
    }
    case GGML_TYPE_Q4_0:
        for (int64_t i = 0; i < nb; i++, y += QK4_0) {
            const block_q4_0 *b = (const block_q4_0 *)src + i;
            float d = H(b->d);
            for (int j = 0; j < QK4_0 / 2; j++) {
                y[j] = (float)((b->qs[j] & 0xF) - 8) * d;
                y[j + QK4_0 / 2] = (float)((b->qs[j] >> 4) - 8) * d;
            }
        }
        break;
    case GGML_TYPE_Q4_1:
        for (int64_t i = 0; i < nb; i++, y += QK4_1) {
            const block_q4_1 *b = (const block_q4_1 *)src + i;
            float d = H(b->d), m = H(b->m);
            for (int j = 0; j < QK4_1 / 2; j++) {
                y[j] = (float)(b->qs[j] & 0xF) * d + m;
                y[j + QK4_1 / 2] = (float)(b->qs[j] >> 4) * d + m;
            }
        }
        break;
    case GGML_TYPE_Q5_0:
        for (int64_t i = 0; i < nb; i++, y += QK5_0) {
            const block_q5_0 *b = (const block_q5_0 *)src + i;
            float d = H(b->d);
            uint32_t qh;
            memcpy(&qh, b->qh, 4);
            for (int j = 0; j < QK5_0 / 2; j++) {
                int h0 = (int)(((qh >> j) << 4) & 0x10), h1 = (int)((qh >> (j + 12)) & 0x10);
                y[j] = (float)(((b->qs[j] & 0xF) | h0) - 16) * d;
                y[j + QK5_0 / 2] = (float)(((b->qs[j] >> 4) | h1) - 16) * d;
            }
        }
        break;
    case GGML_TYPE_Q5_1:
        for (int64_t i = 0; i < nb; i++, y += QK5_1) {
            const block_q5_1 *b = (const block_q5_1 *)src + i;
            float d = H(b->d), m = H(b->m);
            uint32_t qh;
            memcpy(&qh, b->qh, 4);
            for (int j = 0; j < QK5_1 / 2; j++) {
                int h0 = (int)(((qh >> j) << 4) & 0x10), h1 = (int)((qh >> (j + 12)) & 0x10);
                y[j] = (float)((b->qs[j] & 0xF) | h0) * d + m;
                y[j + QK5_1 / 2] = (float)((b->qs[j] >> 4) | h1) * d + m;
            }
        }
        break;
    case GGML_TYPE_Q8_0:
        for (int64_t i = 0; i < nb; i++, y += QK8_0) {
            const block_q8_0 *b = (const block_q8_0 *)src + i;
            float d = H(b->d);
            for (int j = 0; j < QK8_0; j++)
                y[j] = (float)b->qs[j] * d;
        }
        break;
    case GGML_TYPE_Q4_K:
        for (int64_t i = 0; i < nb; i++) {
            const block_q4_K *b = (const block_q4_K *)src + i;
            const uint8_t *q = b->qs;
            float d = H(b->d), min = H(b->dmin);
            for (int j = 0, is = 0; j < QK_K; j += 64, is += 2, q += 32) {
                uint8_t sc, m;
                get_scale_min_k4(is, b->scales, &sc, &m);
                float d1 = d * sc, m1 = min * m;
                get_scale_min_k4(is + 1, b->scales, &sc, &m);
                float d2 = d * sc, m2 = min * m;
                for (int l = 0; l < 32; l++)
                    *y++ = d1 * (float)(q[l] & 0xF) - m1;
                for (int l = 0; l < 32; l++)
                    *y++ = d2 * (float)(q[l] >> 4) - m2;
            }
        }
        break;
    case GGML_TYPE_Q5_K:
        for (int64_t i = 0; i < nb; i++) {
            const block_q5_K *b = (const block_q5_K *)src + i;
            const uint8_t *ql = b->qs, *qh = b->qh;
            float d = H(b->d), min = H(b->dmin);
            uint8_t u1 = 1, u2 = 2;
            for (int j = 0, is = 0; j < QK_K; j += 64, is += 2, ql += 32, u1 <<= 2, u2 <<= 2) {
                uint8_t sc, m;
                get_scale_min_k4(is, b->scales, &sc, &m);
                float d1 = d * sc, m1 = min * m;
                get_scale_min_k4(is + 1, b->scales, &sc, &m);
                float d2 = d * sc, m2 = min * m;
                for (int l = 0; l < 32; l++)
                    *y++ = d1 * (float)((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
                for (int l = 0; l < 32; l++)
                    *y++ = d2 * (float)((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
            }
        }
        break;
    case GGML_TYPE_Q6_K:
        for (int64_t i = 0; i < nb; i++) {
            const block_q6_K *b = (const block_q6_K *)src + i;
            const uint8_t *ql = b->ql, *qh = b->qh;
            const int8_t *sc = b->scales;
            float d = H(b->d);
            for (int k = 0; k < QK_K; k += 128, y += 128, ql += 64, qh += 32, sc += 8) {
                for (int l = 0; l < 32; l++) {
                    int is = l / 16;
                    int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                    int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                    int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                    int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                    y[l] = d * (float)sc[is] * (float)q1;
                    y[l + 32] = d * (float)sc[is + 2] * (float)q2;
                    y[l + 64] = d * (float)sc[is + 4] * (float)q3;
                    y[l + 96] = d * (float)sc[is + 6] * (float)q4;
                }
            }
        }
        break;
    default:
        CAI_ASSERT(!"quant_dequantize_row: unsupported type");
    }
}

/* ---- reference quantization ----------------------------------------------- */

static float amax(const float *x, int n, float *signed_max) {
    float a = 0, s = 0;
    for (int i = 0; i < n; i++)
        if (fabsf(x[i]) > a)
            a = fabsf(x[i]), s = x[i];
    if (signed_max)
        *signed_max = s;
    return a;
}

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* 32 values as 4-bit or 5-bit unsigned levels between min and max. */
static void minmax(const float *x, int n, float *mn, float *mx) {
    *mn = *mx = x[0];
    for (int i = 1; i < n; i++) {
        *mn = fminf(*mn, x[i]);
        *mx = fmaxf(*mx, x[i]);
    }
}

/* K-quant sub-block scales: 8 pairs of 6-bit (scale, min) packed in 12 bytes. */
static void pack_scales_k4(const uint8_t ls[8], const uint8_t lm[8], uint8_t out[12]) {
    for (int j = 0; j < 8; j++) {
        if (j < 4) {
            out[j] = ls[j];
            out[j + 4] = lm[j];
        } else {
            out[j + 4] = (uint8_t)((ls[j] & 0xF) | ((lm[j] & 0xF) << 4));
            out[j - 4] |= (uint8_t)((ls[j] >> 4) << 6);
            out[j] |= (uint8_t)((lm[j] >> 4) << 6);
        }
    }
}

void quant_k_scales(const float mn_in[8], const float mx[8], int nmax, quant_half *d_out,
                    quant_half *dmin_out, uint8_t scales[12], float s[8], float m[8]) {
    float sc[8], mins[8], max_sc = 0, max_min = 0;
    for (int j = 0; j < 8; j++) {
        float mn = fminf(mn_in[j], 0); /* the format subtracts a non-negative min */
        sc[j] = (mx[j] - mn) / (float)nmax;
        mins[j] = -mn;
        max_sc = fmaxf(max_sc, sc[j]);
        max_min = fmaxf(max_min, mins[j]);
    }
    float d = max_sc / 63, dmin = max_min / 63;
    *d_out = quant_float_to_half(d);
    *dmin_out = quant_float_to_half(dmin);
    d = H(*d_out);
    dmin = H(*dmin_out);
    uint8_t ls[8], lm[8];
    for (int j = 0; j < 8; j++) {
        ls[j] = (uint8_t)clampi(d > 0 ? (int)lrintf(sc[j] / d) : 0, 0, 63);
        lm[j] = (uint8_t)clampi(dmin > 0 ? (int)lrintf(mins[j] / dmin) : 0, 0, 63);
        s[j] = d * ls[j];
        m[j] = dmin * lm[j];
    }
    memset(scales, 0, 12);
    pack_scales_k4(ls, lm, scales);
}

/* Q4_K and Q5_K: 8 sub-blocks of 32, x = d*sc*q - dmin*m, q in 0..nmax. */
static void quantize_k_minmax(const float *x, int nmax, quant_half *d_out, quant_half *dmin_out,
                              uint8_t scales[12], uint8_t q[QK_K]) {
    float mn[8], mx[8], s[8], m[8];
    for (int j = 0; j < 8; j++)
        minmax(x + 32 * j, 32, &mn[j], &mx[j]);
    quant_k_scales(mn, mx, nmax, d_out, dmin_out, scales, s, m);
    for (int j = 0; j < 8; j++)
        for (int l = 0; l < 32; l++)
            q[32 * j + l] = (uint8_t)clampi(s[j] > 0 ? (int)lrintf((x[32 * j + l] + m[j]) / s[j]) : 0, 0, nmax);
}

/* The scalar reference quantizer of every type (quant_simd.c must match it
 * byte for byte).
 * (long: one case per block format, as for quant_dequantize_row.) */
int quant_quantize_row(int type, const float *x, void *dst, int64_t n) {
    uint8_t *out = dst;
    switch (type) {
    case GGML_TYPE_F32:
        memcpy(dst, x, (size_t)n * sizeof(float));
        return 0;
    case GGML_TYPE_F16:
    case GGML_TYPE_BF16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h = type == GGML_TYPE_F16 ? quant_float_to_half(x[i]) : quant_float_to_bf16(x[i]);
            memcpy(out + 2 * i, &h, 2);
        }
        return 0;
    case GGML_TYPE_Q8_0:
        for (int64_t i = 0; i < n / QK8_0; i++, x += QK8_0) {
            block_q8_0 *b = (block_q8_0 *)dst + i;
            float d = amax(x, QK8_0, NULL) / 127, id = d ? 1 / d : 0;
            b->d = quant_float_to_half(d);
            for (int j = 0; j < QK8_0; j++)
                b->qs[j] = (int8_t)lrintf(x[j] * id);
        }
        return 0;
    case GGML_TYPE_Q4_0:
    case GGML_TYPE_Q5_0: {
        int levels = type == GGML_TYPE_Q4_0 ? 8 : 16;
        for (int64_t i = 0; i < n / 32; i++, x += 32) {
            float s, d;
            amax(x, 32, &s);
            d = s / -(float)levels;
            float id = d ? 1 / d : 0;
            int q[32];
            for (int j = 0; j < 32; j++)
                q[j] = clampi((int)(x[j] * id + (float)levels + 0.5f), 0, 2 * levels - 1);
            if (type == GGML_TYPE_Q4_0) {
                block_q4_0 *b = (block_q4_0 *)dst + i;
                b->d = quant_float_to_half(d);
                for (int j = 0; j < 16; j++)
                    b->qs[j] = (uint8_t)(q[j] | (q[j + 16] << 4));
            } else {
                block_q5_0 *b = (block_q5_0 *)dst + i;
                b->d = quant_float_to_half(d);
                uint32_t qh = 0;
                for (int j = 0; j < 16; j++) {
                    b->qs[j] = (uint8_t)((q[j] & 0xF) | ((q[j + 16] & 0xF) << 4));
                    qh |= (uint32_t)((q[j] & 0x10) >> 4) << j;
                    qh |= (uint32_t)((q[j + 16] & 0x10) >> 4) << (j + 16);
                }
                memcpy(b->qh, &qh, 4);
            }
        }
        return 0;
    }
    case GGML_TYPE_Q4_1:
    case GGML_TYPE_Q5_1: {
        int nmax = type == GGML_TYPE_Q4_1 ? 15 : 31;
        for (int64_t i = 0; i < n / 32; i++, x += 32) {
            float mn, mx;
            minmax(x, 32, &mn, &mx);
            float d = (mx - mn) / (float)nmax, id = d ? 1 / d : 0;
            int q[32];
            for (int j = 0; j < 32; j++)
                q[j] = clampi((int)((x[j] - mn) * id + 0.5f), 0, nmax);
            if (type == GGML_TYPE_Q4_1) {
                block_q4_1 *b = (block_q4_1 *)dst + i;
                b->d = quant_float_to_half(d);
                b->m = quant_float_to_half(mn);
                for (int j = 0; j < 16; j++)
                    b->qs[j] = (uint8_t)(q[j] | (q[j + 16] << 4));
            } else {
                block_q5_1 *b = (block_q5_1 *)dst + i;
                b->d = quant_float_to_half(d);
                b->m = quant_float_to_half(mn);
                uint32_t qh = 0;
                for (int j = 0; j < 16; j++) {
                    b->qs[j] = (uint8_t)((q[j] & 0xF) | ((q[j + 16] & 0xF) << 4));
                    qh |= (uint32_t)((q[j] & 0x10) >> 4) << j;
                    qh |= (uint32_t)((q[j + 16] & 0x10) >> 4) << (j + 16);
                }
                memcpy(b->qh, &qh, 4);
            }
        }
        return 0;
    }
    case GGML_TYPE_Q4_K:
        for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
            block_q4_K *b = (block_q4_K *)dst + i;
            uint8_t q[QK_K];
            quantize_k_minmax(x, 15, &b->d, &b->dmin, b->scales, q);
            for (int j = 0; j < QK_K; j += 64)
                for (int l = 0; l < 32; l++)
                    b->qs[j / 2 + l] = (uint8_t)(q[j + l] | (q[j + 32 + l] << 4));
        }
        return 0;
    case GGML_TYPE_Q5_K:
        for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
            block_q5_K *b = (block_q5_K *)dst + i;
            uint8_t q[QK_K];
            quantize_k_minmax(x, 31, &b->d, &b->dmin, b->scales, q);
            memset(b->qh, 0, sizeof(b->qh));
            uint8_t m1 = 1, m2 = 2;
            for (int j = 0; j < QK_K; j += 64, m1 <<= 2, m2 <<= 2) {
                for (int l = 0; l < 32; l++) {
                    int a = q[j + l], c = q[j + 32 + l];
                    if (a > 15)
                        b->qh[l] |= m1;
                    if (c > 15)
                        b->qh[l] |= m2;
                    b->qs[j / 2 + l] = (uint8_t)((a & 0xF) | ((c & 0xF) << 4));
                }
            }
        }
        return 0;
    case GGML_TYPE_Q6_K:
        for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
            block_q6_K *b = (block_q6_K *)dst + i;
            float sc[16], max_sc = 0;
            for (int j = 0; j < 16; j++) {
                float s;
                amax(x + 16 * j, 16, &s);
                sc[j] = s / -32;
                if (fabsf(sc[j]) > fabsf(max_sc))
                    max_sc = sc[j];
            }
            float d = max_sc / -128, id = d ? 1 / d : 0;
            b->d = quant_float_to_half(d);
            d = H(b->d);
            int q[QK_K];
            for (int j = 0; j < 16; j++) {
                b->scales[j] = (int8_t)clampi((int)lrintf(id * sc[j]), -128, 127);
                float s = d * b->scales[j];
                for (int l = 0; l < 16; l++)
                    q[16 * j + l] = clampi(s ? (int)lrintf(x[16 * j + l] / s) : 0, -32, 31) + 32;
            }
            for (int j = 0; j < QK_K; j += 128) {
                for (int l = 0; l < 32; l++) {
                    int q1 = q[j + l], q2 = q[j + l + 32], q3 = q[j + l + 64], q4 = q[j + l + 96];
                    b->ql[j / 2 + l] = (uint8_t)((q1 & 0xF) | ((q3 & 0xF) << 4));
                    b->ql[j / 2 + l + 32] = (uint8_t)((q2 & 0xF) | ((q4 & 0xF) << 4));
                    b->qh[j / 4 + l] = (uint8_t)((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
                }
            }
        }
        return 0;
    default:
        return -1;
    }
}
