/* quant_simd.c - AVX2 row quantizers, byte for byte quant.c's reference. */
#include "llm/quant_simd.h"

#include <math.h>
#include <string.h>

#include "llm/kernels.h"
#include "llm/quant.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define QT __attribute__((target("avx2,fma,f16c")))

/* The largest lane of |v| (all lanes >= +0 and none NaN, so any order of
 * comparison gives the same bits). */
QT static inline float hmax(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

/* The smallest lane of |v| (no NaN; the caller sends zeros elsewhere). */
QT static inline float hmin(__m256 v) {
    __m128 m = _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_min_ps(m, _mm_movehl_ps(m, m));
    m = _mm_min_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

/* The reference's amax: the largest |x| of the nv * 8 values (NaN skipped:
 * vmaxps returns its second operand when one is NaN, as `a > m ? a : m`). */
QT static inline float amax_abs(const __m256 *v, int nv) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 acc = _mm256_setzero_ps();
    for (int k = 0; k < nv; k++)
        acc = _mm256_max_ps(_mm256_andnot_ps(sign, v[k]), acc);
    return hmax(acc);
}

/* The reference's signed amax: the first value whose |x| is the largest,
 * or +0 when all are zeros (or NaN). */
QT static inline float amax_signed(const __m256 *v, int nv, const float *x) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    float a = amax_abs(v, nv);
    if (a == 0)
        return 0;
    const __m256 va = _mm256_set1_ps(a);
    uint32_t mask = 0;
    for (int k = 0; k < nv; k++)
        mask |= (uint32_t)_mm256_movemask_ps(_mm256_cmp_ps(_mm256_andnot_ps(sign, v[k]), va, _CMP_EQ_OQ))
                << (8 * k);
    return x[__builtin_ctz(mask)];
}

/* Nonzero if a lane is cvtps2dq's out-of-range answer (0x80000000): the
 * reference's lrintf gives another int there (or the same), so the block
 * goes to the reference. */
QT static inline int lrint_overflow(__m256i q) {
    return _mm256_movemask_epi8(_mm256_cmpeq_epi32(q, _mm256_set1_epi32(INT32_MIN)));
}

/* 32 int32 lanes to 32 bytes, keeping the low 8 bits as a C cast does. */
QT static inline __m256i pack_trunc_i8(__m256i a, __m256i b, __m256i c, __m256i d) {
    const __m256i ff = _mm256_set1_epi32(0xff);
    __m256i ab = _mm256_packus_epi32(_mm256_and_si256(a, ff), _mm256_and_si256(b, ff));
    __m256i cd = _mm256_packus_epi32(_mm256_and_si256(c, ff), _mm256_and_si256(d, ff));
    return _mm256_permutevar8x32_epi32(_mm256_packus_epi16(ab, cd), _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

/* A float to half, round to nearest even: quant_float_to_half for every
 * non-NaN value (test_quant checks every half and the midpoints). */
QT static inline quant_half f2h(float f) { return (quant_half)_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT); }

/* ---- expansions ------------------------------------------------------------ */

QT static void bf16_to_f32_avx2(const void *src, float *y, int64_t n) {
    const uint8_t *p = src;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i a = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(const void *)(p + 2 * i)));
        __m256i b = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(const void *)(p + 2 * i + 16)));
        _mm256_storeu_ps(y + i, _mm256_castsi256_ps(_mm256_slli_epi32(a, 16)));
        _mm256_storeu_ps(y + i + 8, _mm256_castsi256_ps(_mm256_slli_epi32(b, 16)));
    }
    if (i < n)
        quant_dequantize_row(GGML_TYPE_BF16, p + 2 * i, y + i, n - i);
}

/* vcvtph2ps quiets a signalling NaN, the reference keeps its bits: eight
 * values with an all-ones exponent go to the reference. */
QT static void f16_to_f32_avx2(const void *src, float *y, int64_t n) {
    const uint8_t *p = src;
    const __m128i e = _mm_set1_epi16(0x7c00);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm_loadu_si128((const __m128i *)(const void *)(p + 2 * i));
        if (_mm_movemask_epi8(_mm_cmpeq_epi16(_mm_and_si128(h, e), e)))
            quant_dequantize_row(GGML_TYPE_F16, p + 2 * i, y + i, 8);
        else
            _mm256_storeu_ps(y + i, _mm256_cvtph_ps(h));
    }
    if (i < n)
        quant_dequantize_row(GGML_TYPE_F16, p + 2 * i, y + i, n - i);
}

/* ---- Q8_0 ---------------------------------------------------------------------- */

QT static void q8_0_avx2(const float *x, void *dst, int64_t n) {
    block_q8_0 *b = dst;
    for (int64_t i = 0; i < n / QK8_0; i++, x += QK8_0) {
        __m256 v[4];
        for (int k = 0; k < 4; k++)
            v[k] = _mm256_loadu_ps(x + 8 * k);
        float d = amax_abs(v, 4) / 127, id = d ? 1 / d : 0;
        const __m256 vid = _mm256_set1_ps(id);
        __m256i q[4];
        int over = 0;
        for (int k = 0; k < 4; k++) {
            q[k] = _mm256_cvtps_epi32(_mm256_mul_ps(v[k], vid));
            over |= lrint_overflow(q[k]);
        }
        if (over) {
            quant_quantize_row(GGML_TYPE_Q8_0, x, b + i, QK8_0);
            continue;
        }
        b[i].d = f2h(d);
        _mm256_storeu_si256((__m256i *)(void *)b[i].qs, pack_trunc_i8(q[0], q[1], q[2], q[3]));
    }
}

/* ---- Q4_0 ---------------------------------------------------------------------- */

/* Q4_0 and Q5_0: (int)(x * id + levels + 0.5) clamped to 0 .. 2 * levels - 1,
 * d = the first max-abs value / -levels. */
QT static inline void q45_0_block(const float *x, int levels, quant_half *d_out, __m256i q[4]) {
    const __m256 lv = _mm256_set1_ps((float)levels), half = _mm256_set1_ps(0.5f);
    const __m256i zero = _mm256_setzero_si256(), top = _mm256_set1_epi32(2 * levels - 1);
    __m256 v[4];
    for (int k = 0; k < 4; k++)
        v[k] = _mm256_loadu_ps(x + 8 * k);
    float d = amax_signed(v, 4, x) / -(float)levels, id = d ? 1 / d : 0;
    const __m256 vid = _mm256_set1_ps(id);
    for (int k = 0; k < 4; k++) {
        __m256 t = _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(v[k], vid), lv), half);
        q[k] = _mm256_min_epi32(_mm256_max_epi32(_mm256_cvttps_epi32(t), zero), top);
    }
    *d_out = f2h(d);
}

/* Low nibbles of values j and j + 16 into byte j, for the 32 values in q. */
QT static inline __m128i pack_nibbles(const __m256i q[4]) {
    const __m256i m = _mm256_set1_epi32(0xF);
    __m256i lo = _mm256_or_si256(_mm256_and_si256(q[0], m), _mm256_slli_epi32(_mm256_and_si256(q[2], m), 4));
    __m256i hi = _mm256_or_si256(_mm256_and_si256(q[1], m), _mm256_slli_epi32(_mm256_and_si256(q[3], m), 4));
    __m256i p = _mm256_permute4x64_epi64(_mm256_packus_epi32(lo, hi), 0xD8);
    return _mm_packus_epi16(_mm256_castsi256_si128(p), _mm256_extracti128_si256(p, 1));
}

QT static void q4_0_avx2(const float *x, void *dst, int64_t n) {
    block_q4_0 *b = dst;
    for (int64_t i = 0; i < n / QK4_0; i++, x += QK4_0) {
        __m256i q[4];
        q45_0_block(x, 8, &b[i].d, q);
        _mm_storeu_si128((__m128i *)(void *)b[i].qs, pack_nibbles(q));
    }
}

QT static void q5_0_avx2(const float *x, void *dst, int64_t n) {
    block_q5_0 *b = dst;
    for (int64_t i = 0; i < n / QK5_0; i++, x += QK5_0) {
        __m256i q[4];
        q45_0_block(x, 16, &b[i].d, q);
        _mm_storeu_si128((__m128i *)(void *)b[i].qs, pack_nibbles(q));
        uint32_t qh = 0; /* bit j: the fifth bit of value j */
        for (int k = 0; k < 4; k++)
            qh |= (uint32_t)_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_slli_epi32(q[k], 27))) << (8 * k);
        memcpy(b[i].qh, &qh, 4);
    }
}

/* ---- Q4_K ---------------------------------------------------------------------- */

/* 32 small non-negative int32 lanes (0..255) to 32 bytes in order. */
QT static inline __m256i pack_u8(__m256i a, __m256i b, __m256i c, __m256i d) {
    return _mm256_permutevar8x32_epi32(_mm256_packus_epi16(_mm256_packs_epi32(a, b), _mm256_packs_epi32(c, d)),
                                       _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

/* The levels q (0 .. nmax) of a Q4_K/Q5_K super-block and its scales, as
 * quantize_k_minmax in quant.c; 0, or 1 if the block must go to the
 * reference (a NaN, a zero minimum or maximum, a quotient beyond int32). */
QT static inline int k_minmax_block(const float *x, int nmax, quant_half *d, quant_half *dmin,
                                    uint8_t scales[12], uint8_t q[QK_K]) {
    const __m256i zero = _mm256_setzero_si256(), top = _mm256_set1_epi32(nmax);
    float mn[8], mx[8], s[8], m[8];
    int special = 0;
    for (int j = 0; j < 8; j++) {
        const float *xj = x + 32 * j;
        __m256 v0 = _mm256_loadu_ps(xj), v1 = _mm256_loadu_ps(xj + 8);
        __m256 v2 = _mm256_loadu_ps(xj + 16), v3 = _mm256_loadu_ps(xj + 24);
        special |= _mm256_movemask_ps(_mm256_or_ps(_mm256_cmp_ps(v0, v1, _CMP_UNORD_Q),
                                                   _mm256_cmp_ps(v2, v3, _CMP_UNORD_Q)));
        mn[j] = hmin(_mm256_min_ps(_mm256_min_ps(v0, v1), _mm256_min_ps(v2, v3)));
        mx[j] = hmax(_mm256_max_ps(_mm256_max_ps(v0, v1), _mm256_max_ps(v2, v3)));
        /* a zero's sign in the reference follows fminf/fmaxf's order */
        special |= mn[j] == 0 || mx[j] == 0;
    }
    if (special)
        return 1;
    quant_k_scales(mn, mx, nmax, d, dmin, scales, s, m);
    int over = 0;
    for (int j = 0; j < 8; j++) {
        if (!(s[j] > 0)) {
            _mm256_store_si256((__m256i *)(void *)(q + 32 * j), zero);
            continue;
        }
        const __m256 vs = _mm256_set1_ps(s[j]), vm = _mm256_set1_ps(m[j]);
        __m256i r[4];
        for (int k = 0; k < 4; k++) {
            r[k] = _mm256_cvtps_epi32(_mm256_div_ps(_mm256_add_ps(_mm256_loadu_ps(x + 32 * j + 8 * k), vm), vs));
            over |= lrint_overflow(r[k]);
            r[k] = _mm256_min_epi32(_mm256_max_epi32(r[k], zero), top);
        }
        _mm256_store_si256((__m256i *)(void *)(q + 32 * j), pack_u8(r[0], r[1], r[2], r[3]));
    }
    return over != 0;
}

QT static void q4_K_avx2(const float *x, void *dst, int64_t n) {
    block_q4_K *b = dst;
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        _Alignas(32) uint8_t q[QK_K];
        if (k_minmax_block(x, 15, &b[i].d, &b[i].dmin, b[i].scales, q)) {
            quant_quantize_row(GGML_TYPE_Q4_K, x, b + i, QK_K);
            continue;
        }
        for (int j = 0; j < QK_K; j += 64) { /* values 0..15: no bit crosses a byte */
            __m256i lo = _mm256_load_si256((const __m256i *)(const void *)(q + j));
            __m256i hi = _mm256_load_si256((const __m256i *)(const void *)(q + j + 32));
            _mm256_storeu_si256((__m256i *)(void *)(b[i].qs + j / 2), _mm256_or_si256(lo, _mm256_slli_epi16(hi, 4)));
        }
    }
}

QT static void q5_K_avx2(const float *x, void *dst, int64_t n) {
    block_q5_K *b = dst;
    const __m256i m0f = _mm256_set1_epi8(0x0F), m10 = _mm256_set1_epi8(0x10);
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        _Alignas(32) uint8_t q[QK_K];
        if (k_minmax_block(x, 31, &b[i].d, &b[i].dmin, b[i].scales, q)) {
            quant_quantize_row(GGML_TYPE_Q5_K, x, b + i, QK_K);
            continue;
        }
        /* qh[l] bit s: the fifth bit of value 32 s + l; each shift keeps
         * the lone bit 4 inside its byte */
        __m256i qh = _mm256_setzero_si256();
        for (int sb = 0; sb < 8; sb++) {
            __m256i t = _mm256_and_si256(_mm256_load_si256((const __m256i *)(const void *)(q + 32 * sb)), m10);
            qh = _mm256_or_si256(qh, sb >= 4 ? _mm256_slli_epi16(t, sb - 4) : _mm256_srli_epi16(t, 4 - sb));
        }
        _mm256_storeu_si256((__m256i *)(void *)b[i].qh, qh);
        for (int j = 0; j < QK_K; j += 64) {
            __m256i lo = _mm256_and_si256(_mm256_load_si256((const __m256i *)(const void *)(q + j)), m0f);
            __m256i hi = _mm256_and_si256(_mm256_load_si256((const __m256i *)(const void *)(q + j + 32)), m0f);
            _mm256_storeu_si256((__m256i *)(void *)(b[i].qs + j / 2), _mm256_or_si256(lo, _mm256_slli_epi16(hi, 4)));
        }
    }
}

/* ---- Q6_K ---------------------------------------------------------------------- */

static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

QT static void q6_K_avx2(const float *x, void *dst, int64_t n) {
    block_q6_K *b = dst;
    const __m256i lo32 = _mm256_set1_epi32(-32), hi31 = _mm256_set1_epi32(31), off = _mm256_set1_epi32(32);
    for (int64_t i = 0; i < n / QK_K; i++, x += QK_K) {
        float sc[16], max_sc = 0;
        for (int j = 0; j < 16; j++) { /* as the reference, with its signed amax */
            __m256 v[2] = {_mm256_loadu_ps(x + 16 * j), _mm256_loadu_ps(x + 16 * j + 8)};
            sc[j] = amax_signed(v, 2, x + 16 * j) / -32;
            if (fabsf(sc[j]) > fabsf(max_sc))
                max_sc = sc[j];
        }
        float d = max_sc / -128, id = d ? 1 / d : 0;
        b[i].d = f2h(d);
        d = quant_half_to_float(b[i].d);
        _Alignas(32) uint8_t q[QK_K];
        int over = 0;
        for (int j = 0; j < 16; j++) {
            b[i].scales[j] = (int8_t)clampi((int)lrintf(id * sc[j]), -128, 127);
            float s = d * b[i].scales[j];
            __m256i r[2];
            for (int k = 0; k < 2; k++) {
                if (s) {
                    r[k] = _mm256_cvtps_epi32(_mm256_div_ps(_mm256_loadu_ps(x + 16 * j + 8 * k), _mm256_set1_ps(s)));
                    over |= lrint_overflow(r[k]);
                    r[k] = _mm256_add_epi32(_mm256_min_epi32(_mm256_max_epi32(r[k], lo32), hi31), off);
                } else {
                    r[k] = off;
                }
            }
            __m256i p = _mm256_permute4x64_epi64(_mm256_packs_epi32(r[0], r[1]), 0xD8);
            _mm_store_si128((__m128i *)(void *)(q + 16 * j),
                            _mm_packus_epi16(_mm256_castsi256_si128(p), _mm256_extracti128_si256(p, 1)));
        }
        if (over) {
            quant_quantize_row(GGML_TYPE_Q6_K, x, b + i, QK_K);
            continue;
        }
        /* values 0..63; epi16 shifts, then masks keep each byte's own bits */
        const __m256i m0f = _mm256_set1_epi8(0x0F), m03 = _mm256_set1_epi8(0x03), m0c = _mm256_set1_epi8(0x0C);
        const __m256i m30 = _mm256_set1_epi8(0x30), mc0 = _mm256_set1_epi8((char)0xC0);
        for (int j = 0; j < QK_K; j += 128) {
            __m256i q1 = _mm256_load_si256((const __m256i *)(const void *)(q + j));
            __m256i q2 = _mm256_load_si256((const __m256i *)(const void *)(q + j + 32));
            __m256i q3 = _mm256_load_si256((const __m256i *)(const void *)(q + j + 64));
            __m256i q4 = _mm256_load_si256((const __m256i *)(const void *)(q + j + 96));
            __m256i l13 = _mm256_or_si256(_mm256_and_si256(q1, m0f), _mm256_slli_epi16(_mm256_and_si256(q3, m0f), 4));
            __m256i l24 = _mm256_or_si256(_mm256_and_si256(q2, m0f), _mm256_slli_epi16(_mm256_and_si256(q4, m0f), 4));
            __m256i h = _mm256_or_si256(
                _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q1, 4), m03),
                                _mm256_and_si256(_mm256_srli_epi16(q2, 2), m0c)),
                _mm256_or_si256(_mm256_and_si256(q3, m30), _mm256_and_si256(_mm256_slli_epi16(q4, 2), mc0)));
            _mm256_storeu_si256((__m256i *)(void *)(b[i].ql + j / 2), l13);
            _mm256_storeu_si256((__m256i *)(void *)(b[i].ql + j / 2 + 32), l24);
            _mm256_storeu_si256((__m256i *)(void *)(b[i].qh + j / 4), h);
        }
    }
}
#endif

quant_simd_qfn quant_simd_quantizer(int type, int level) {
#if defined(__x86_64__)
    if (level >= KERNEL_AVX2) {
        switch (type) {
        case GGML_TYPE_Q8_0: return q8_0_avx2;
        case GGML_TYPE_Q4_0: return q4_0_avx2;
        case GGML_TYPE_Q5_0: return q5_0_avx2;
        case GGML_TYPE_Q4_K: return q4_K_avx2;
        case GGML_TYPE_Q5_K: return q5_K_avx2;
        case GGML_TYPE_Q6_K: return q6_K_avx2;
        default: break;
        }
    }
#endif
    (void)type;
    (void)level;
    return NULL;
}

quant_simd_dfn quant_simd_dequantizer(int type, int level) {
#if defined(__x86_64__)
    if (level >= KERNEL_AVX2) {
        switch (type) {
        case GGML_TYPE_BF16: return bf16_to_f32_avx2;
        case GGML_TYPE_F16: return f16_to_f32_avx2;
        default: break;
        }
    }
#endif
    (void)type;
    (void)level;
    return NULL;
}
