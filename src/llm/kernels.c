/* kernels.c - scalar references and run-time dispatch of the dot products. */
#include "llm/kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "llm/quant.h"
#include "llm/x16.h"

#define H(h) quant_half_to_float(h)

/* One block of 32 activations: scale d = amax / 127 (NaN skipped), quants
 * rounded to nearest even, and the sums of the quants of each half. */
static void quantize_block(const float *x, int8_t *qs, float *out_d, int *sum_lo, int *sum_hi) {
    float amax = 0;
    for (int j = 0; j < 32; j++) { /* fmaxf's result (NaN skipped), without its libm call */
        float a = fabsf(x[j]);
        amax = a > amax ? a : amax;
    }
    float d = amax / 127, id = d ? 1 / d : 0;
    int sum[2] = {0, 0};
    for (int j = 0; j < 32; j++) {
        qs[j] = (int8_t)lrintf(x[j] * id);
        sum[j / 16] += qs[j];
    }
    *out_d = d;
    *sum_lo = sum[0];
    *sum_hi = sum[1];
}

typedef void (*quantize_block_fn)(const float *x, int8_t *qs, float *out_d, int *sum_lo, int *sum_hi);
static quantize_block_fn quantize_block_get(void);

void kernel_quantize_x8(const float *x, block_x8 *y, int64_t n) {
    const quantize_block_fn q = quantize_block_get();
    for (int64_t i = 0; i < n / 32; i++) {
        int lo, hi;
        q(x + 32 * i, y[i].qs, &y[i].d, &lo, &hi);
        y[i].s = y[i].d * (float)(lo + hi);
    }
}

void kernel_quantize_xrow(const float *x, int64_t n, int8_t *qs, float *d, float *s, float *s16) {
    const quantize_block_fn q = quantize_block_get();
    for (int64_t i = 0; i < n / 32; i++) {
        int lo, hi;
        q(x + 32 * i, qs + 32 * i, d + i, &lo, &hi);
        s[i] = d[i] * (float)(lo + hi);
        if (s16) {
            s16[2 * i] = d[i] * (float)lo;
            s16[2 * i + 1] = d[i] * (float)hi;
        }
    }
}

static void get_scale_min_k4(int j, const uint8_t *q, uint8_t *d, uint8_t *m) {
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

/* ---- scalar references ------------------------------------------------------ */

static float dot_q8_0_ref(const void *w, const block_x8 *x, int64_t n) {
    const block_q8_0 *b = w;
    float s = 0;
    for (int64_t i = 0; i < n / 32; i++) {
        int sum = 0;
        for (int j = 0; j < 32; j++)
            sum += b[i].qs[j] * x[i].qs[j];
        s += H(b[i].d) * x[i].d * (float)sum;
    }
    return s;
}

/* Sum of nibble (plus optional fifth bit) times activation over a block of 32. */
static int sum_q45(const uint8_t *qs, const uint8_t *qh, const int8_t *xq) {
    uint32_t h = 0;
    if (qh)
        memcpy(&h, qh, 4);
    int sum = 0;
    for (int j = 0; j < 16; j++) {
        int lo = (qs[j] & 0xF) | (int)(((h >> j) & 1) << 4), hi = (qs[j] >> 4) | (int)(((h >> (j + 16)) & 1) << 4);
        sum += lo * xq[j] + hi * xq[j + 16];
    }
    return sum;
}

static float dot_q4_0_ref(const void *w, const block_x8 *x, int64_t n) {
    const block_q4_0 *b = w;
    float s = 0;
    for (int64_t i = 0; i < n / 32; i++)
        s += H(b[i].d) * (x[i].d * (float)sum_q45(b[i].qs, NULL, x[i].qs) - 8 * x[i].s);
    return s;
}

static float dot_q4_1_ref(const void *w, const block_x8 *x, int64_t n) {
    const block_q4_1 *b = w;
    float s = 0;
    for (int64_t i = 0; i < n / 32; i++)
        s += H(b[i].d) * x[i].d * (float)sum_q45(b[i].qs, NULL, x[i].qs) + H(b[i].m) * x[i].s;
    return s;
}

static float dot_q5_0_ref(const void *w, const block_x8 *x, int64_t n) {
    const block_q5_0 *b = w;
    float s = 0;
    for (int64_t i = 0; i < n / 32; i++)
        s += H(b[i].d) * (x[i].d * (float)sum_q45(b[i].qs, b[i].qh, x[i].qs) - 16 * x[i].s);
    return s;
}

static float dot_q5_1_ref(const void *w, const block_x8 *x, int64_t n) {
    const block_q5_1 *b = w;
    float s = 0;
    for (int64_t i = 0; i < n / 32; i++)
        s += H(b[i].d) * x[i].d * (float)sum_q45(b[i].qs, b[i].qh, x[i].qs) + H(b[i].m) * x[i].s;
    return s;
}

static float dot_qk45_ref(const void *w, const block_x8 *x, int64_t n, int five) {
    float s = 0;
    for (int64_t i = 0; i < n / QK_K; i++, x += 8) {
        const uint8_t *scales, *qs, *qh = NULL;
        float d, dmin;
        if (five) {
            const block_q5_K *b = (const block_q5_K *)w + i;
            scales = b->scales, qs = b->qs, qh = b->qh, d = H(b->d), dmin = H(b->dmin);
        } else {
            const block_q4_K *b = (const block_q4_K *)w + i;
            scales = b->scales, qs = b->qs, d = H(b->d), dmin = H(b->dmin);
        }
        for (int j = 0; j < 8; j++) {
            uint8_t sc, m;
            get_scale_min_k4(j, scales, &sc, &m);
            int sum = 0;
            for (int l = 0; l < 32; l++) {
                int q = j % 2 ? qs[32 * (j / 2) + l] >> 4 : qs[32 * (j / 2) + l] & 0xF;
                if (qh && (qh[l] >> j) & 1)
                    q += 16;
                sum += q * x[j].qs[l];
            }
            s += d * sc * x[j].d * (float)sum - dmin * m * x[j].s;
        }
    }
    return s;
}

static float dot_q4_K_ref(const void *w, const block_x8 *x, int64_t n) { return dot_qk45_ref(w, x, n, 0); }
static float dot_q5_K_ref(const void *w, const block_x8 *x, int64_t n) { return dot_qk45_ref(w, x, n, 1); }

static float dot_q6_K_ref(const void *w, const block_x8 *x, int64_t n) {
    const block_q6_K *bb = w;
    float s = 0;
    for (int64_t i = 0; i < n / QK_K; i++) {
        const block_q6_K *b = &bb[i];
        float d = H(b->d);
        for (int half = 0; half < 2; half++, x += 4) {
            const uint8_t *ql = b->ql + 64 * half, *qh = b->qh + 32 * half;
            const int8_t *sc = b->scales + 8 * half;
            for (int g = 0; g < 4; g++) {
                int sum[2] = {0, 0};
                for (int l = 0; l < 32; l++) {
                    int lo = g % 2 ? ql[l + 32] : ql[l];
                    int q = (g < 2 ? lo & 0xF : lo >> 4) | (((qh[l] >> (2 * g)) & 3) << 4);
                    sum[l / 16] += (q - 32) * x[g].qs[l];
                }
                s += d * x[g].d * ((float)sc[2 * g] * (float)sum[0] + (float)sc[2 * g + 1] * (float)sum[1]);
            }
        }
    }
    return s;
}

/* y[i] += a * x[i] for |n| halves |x| (the attention's f16 values). */
typedef void (*kernel_axpy_h)(float a, const uint16_t *x, float *y, int64_t n);

static void axpy_h_ref(float a, const uint16_t *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        y[i] += a * H(x[i]);
}

static float dot_f32_ref(const void *w, const float *x, int64_t n) {
    const float *v = w;
    float s = 0;
    for (int64_t i = 0; i < n; i++)
        s += v[i] * x[i];
    return s;
}

static float dot_f16_ref(const void *w, const float *x, int64_t n) {
    const uint8_t *p = w;
    float s = 0;
    for (int64_t i = 0; i < n; i++) {
        quant_half h;
        memcpy(&h, p + 2 * i, 2);
        s += H(h) * x[i];
    }
    return s;
}

static float dot_bf16_ref(const void *w, const float *x, int64_t n) {
    const uint8_t *p = w;
    float s = 0;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, p + 2 * i, 2);
        s += quant_bf16_to_float(h) * x[i];
    }
    return s;
}

/* ---- x86 SIMD levels -------------------------------------------------------- */

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>

#define KTARGET __attribute__((target("avx2,fma,f16c")))
#define KSUF avx2
#define MUL_SUM_US8(u, s) _mm256_madd_epi16(_mm256_maddubs_epi16((u), (s)), _mm256_set1_epi16(1))
#include "llm/kernels_x86.inc"
#undef KTARGET
#undef KSUF
#undef MUL_SUM_US8

#define KTARGET __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))
#define KSUF vnni
#define MUL_SUM_US8(u, s) _mm256_dpbusd_epi32(_mm256_setzero_si256(), (u), (s))
#include "llm/kernels_x86.inc"
#undef KTARGET
#undef KSUF
#undef MUL_SUM_US8

#include "llm/kernels_avx512.inc"

/* quantize_block in 512-bit vectors, bit for bit: vmaxps keeps its second
 * operand where the first is NaN (as the scalar loop skips NaN), the
 * product is the same single multiply, vcvtps2dq rounds to nearest even
 * as lrintf does, vpmovdb truncates as the cast to int8_t does, and the
 * sums are of the truncated quants. */
__attribute__((target("avx512f,avx512bw,avx512vl"))) static void quantize_block_512(const float *x, int8_t *qs,
                                                                                     float *out_d, int *sum_lo,
                                                                                     int *sum_hi) {
    const __m512 x0 = _mm512_loadu_ps(x), x1 = _mm512_loadu_ps(x + 16);
    __m512 m = _mm512_max_ps(_mm512_abs_ps(x0), _mm512_setzero_ps());
    m = _mm512_max_ps(_mm512_abs_ps(x1), m);
    const float amax = _mm512_reduce_max_ps(m);
    const float d = amax / 127, id = d ? 1 / d : 0;
    const __m128i q0 = _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(x0, _mm512_set1_ps(id))));
    const __m128i q1 = _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(x1, _mm512_set1_ps(id))));
    _mm_storeu_si128((__m128i *)(void *)qs, q0);
    _mm_storeu_si128((__m128i *)(void *)(qs + 16), q1);
    *out_d = d;
    *sum_lo = _mm512_reduce_add_epi32(_mm512_cvtepi8_epi32(q0));
    *sum_hi = _mm512_reduce_add_epi32(_mm512_cvtepi8_epi32(q1));
}

__attribute__((target("avx2,fma,f16c"))) static void axpy_h_avx2(float a, const uint16_t *x, float *y, int64_t n) {
    const __m256 va = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i))),
                                                _mm256_loadu_ps(y + i)));
    for (; i < n; i++)
        y[i] += a * _cvtsh_ss(x[i]);
}
#endif

/* ---- attention ---------------------------------------------------------------- */

/* The references, and the AVX-512 version's fallback for head sizes it
 * has no unrolled loop for, over a row dot product and axpy. */
static void attn_qk_with(kernel_dot_f dot, const uint16_t *k, size_t stride, int n, const float *q, int nq, int D,
                         float scale, float *sc, size_t sstride) {
    for (int p = 0; p < n; p++)
        for (int u = 0; u < nq; u++)
            sc[(size_t)u * sstride + (size_t)p] = dot(k + (size_t)p * stride, q + (size_t)u * (size_t)D, D) * scale;
}

static void attn_wv_with(kernel_axpy_h axpy, const uint16_t *v, size_t stride, int n, const float *sc,
                         size_t sstride, int nq, int D, float *o) {
    for (int p = 0; p < n; p++)
        for (int u = 0; u < nq; u++)
            axpy(sc[(size_t)u * sstride + (size_t)p], v + (size_t)p * stride, o + (size_t)u * (size_t)D, D);
}

static void attn_qk_ref(const uint16_t *k, size_t stride, int n, const float *q, int nq, int D, float scale,
                        float *sc, size_t sstride) {
    attn_qk_with(dot_f16_ref, k, stride, n, q, nq, D, scale, sc, sstride);
}

static void attn_wv_ref(const uint16_t *v, size_t stride, int n, const float *sc, size_t sstride, int nq, int D,
                        float *o) {
    attn_wv_with(axpy_h_ref, v, stride, n, sc, sstride, nq, D, o);
}

#if defined(__x86_64__)
#define A512 __attribute__((target("avx2,fma,f16c,avx512f")))

/* One key row converted into NV vectors, then NV FMAs and one sum per head. */
A512 __attribute__((always_inline)) static inline void attn_qk_nv(const uint16_t *k, size_t stride, int n,
                                                                   const float *q, int nq, float scale, float *sc,
                                                                   size_t sstride, const int NV) {
    for (int p = 0; p < n; p++) {
        __m512 kr[16];
        const uint16_t *kp = k + (size_t)p * stride;
#pragma GCC unroll 16
        for (int i = 0; i < NV; i++)
            kr[i] = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(kp + 16 * i)));
        for (int u = 0; u < nq; u++) {
            const float *qu = q + (size_t)u * 16 * NV;
            __m512 a0 = _mm512_mul_ps(kr[0], _mm512_loadu_ps(qu)), a1 = _mm512_setzero_ps();
#pragma GCC unroll 16
            for (int i = 1; i < NV; i++)
                if (i & 1)
                    a1 = _mm512_fmadd_ps(kr[i], _mm512_loadu_ps(qu + 16 * i), a1);
                else
                    a0 = _mm512_fmadd_ps(kr[i], _mm512_loadu_ps(qu + 16 * i), a0);
            sc[(size_t)u * sstride + (size_t)p] = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1)) * scale;
        }
    }
}

/* Per head, its output row held in NV registers over a chunk of value
 * rows, converted to f32 once for all the group's heads and small enough
 * to stay in L1 for them. */
A512 __attribute__((always_inline)) static inline void attn_wv_nv(const uint16_t *v, size_t stride, int n,
                                                                   const float *sc, size_t sstride, int nq, float *o,
                                                                   const int NV) {
    enum { CHUNK = 32 };
    float vf[CHUNK * 16 * 16] __attribute__((aligned(64)));
    for (int p0 = 0; p0 < n; p0 += CHUNK) {
        const int p1 = n - p0 < CHUNK ? n : p0 + CHUNK;
        for (int p = p0; p < p1; p++)
#pragma GCC unroll 16
            for (int i = 0; i < NV; i++)
                _mm512_store_ps(vf + (size_t)(p - p0) * 16 * NV + 16 * i,
                                _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)(v + (size_t)p * stride + 16 * i))));
        for (int u = 0; u < nq; u++) {
            float *ou = o + (size_t)u * 16 * NV;
            const float *su = sc + (size_t)u * sstride;
            __m512 acc[16];
#pragma GCC unroll 16
            for (int i = 0; i < NV; i++)
                acc[i] = _mm512_loadu_ps(ou + 16 * i);
            for (int p = p0; p < p1; p++) {
                const __m512 w = _mm512_set1_ps(su[p]);
                const float *vp = vf + (size_t)(p - p0) * 16 * NV;
#pragma GCC unroll 16
                for (int i = 0; i < NV; i++)
                    acc[i] = _mm512_fmadd_ps(w, _mm512_load_ps(vp + 16 * i), acc[i]);
            }
#pragma GCC unroll 16
            for (int i = 0; i < NV; i++)
                _mm512_storeu_ps(ou + 16 * i, acc[i]);
        }
    }
}

A512 static void attn_qk_512(const uint16_t *k, size_t stride, int n, const float *q, int nq, int D, float scale,
                             float *sc, size_t sstride) {
    switch (D) {
    case 64: attn_qk_nv(k, stride, n, q, nq, scale, sc, sstride, 4); break;
    case 128: attn_qk_nv(k, stride, n, q, nq, scale, sc, sstride, 8); break;
    case 256: attn_qk_nv(k, stride, n, q, nq, scale, sc, sstride, 16); break;
    default: attn_qk_with(dot_f16_vnni, k, stride, n, q, nq, D, scale, sc, sstride); break;
    }
}

A512 static void attn_wv_512(const uint16_t *v, size_t stride, int n, const float *sc, size_t sstride, int nq, int D,
                             float *o) {
    switch (D) {
    case 64: attn_wv_nv(v, stride, n, sc, sstride, nq, o, 4); break;
    case 128: attn_wv_nv(v, stride, n, sc, sstride, nq, o, 8); break;
    case 256: attn_wv_nv(v, stride, n, sc, sstride, nq, o, 16); break;
    default: attn_wv_with(axpy_h_avx2, v, stride, n, sc, sstride, nq, D, o); break;
    }
}

static void attn_qk_avx2(const uint16_t *k, size_t stride, int n, const float *q, int nq, int D, float scale,
                         float *sc, size_t sstride) {
    attn_qk_with(dot_f16_avx2, k, stride, n, q, nq, D, scale, sc, sstride);
}

static void attn_wv_avx2(const uint16_t *v, size_t stride, int n, const float *sc, size_t sstride, int nq, int D,
                         float *o) {
    attn_wv_with(axpy_h_avx2, v, stride, n, sc, sstride, nq, D, o);
}
#undef A512
#endif

/* ---- softmax and SiLU ------------------------------------------------------------ */

static void softmax_ref(float *x, int n) {
    float max = -INFINITY, sum = 0;
    for (int p = 0; p < n; p++)
        max = x[p] > max ? x[p] : max; /* fmaxf without the call */
    for (int p = 0; p < n; p++)
        sum += x[p] = expf(x[p] - max);
    for (int p = 0; p < n; p++)
        x[p] /= sum;
}

static void silu_mul_ref(float *g, const float *u, size_t n) {
    for (size_t i = 0; i < n; i++)
        g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

#if defined(__x86_64__)
/* glibc's vector expf (libmvec, the x86_64 vector function ABI): 16 or 8
 * floats in one register, a few ulp at most from its scalar expf. */
__attribute__((target("avx512f"))) __m512 _ZGVeN16v_expf(__m512 x);
__attribute__((target("avx2"))) __m256 _ZGVdN8v_expf(__m256 x);

/* The lanes of a 16-float vector that hold the next |left| values. */
static inline __mmask16 lanes16(int left) { return left >= 16 ? 0xFFFF : (__mmask16)((1u << left) - 1); }

/* The tails through masked loads and stores: -inf where there is no value
 * (no maximum; exp gives 0), so every value goes through the same code. */
__attribute__((target("avx512f"))) static void softmax_512(float *x, int n) {
    __m512 vmax = _mm512_set1_ps(-INFINITY), vsum = _mm512_setzero_ps();
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    for (int p = 0; p < n; p += 16) {
        const __mmask16 m = lanes16(n - p);
        vmax = _mm512_max_ps(_mm512_mask_loadu_ps(ninf, m, x + p), vmax); /* NaN: keeps vmax */
    }
    const __m512 max = _mm512_set1_ps(_mm512_reduce_max_ps(vmax));
    for (int p = 0; p < n; p += 16) {
        const __mmask16 m = lanes16(n - p);
        const __m512 e = _ZGVeN16v_expf(_mm512_sub_ps(_mm512_mask_loadu_ps(ninf, m, x + p), max));
        vsum = _mm512_add_ps(vsum, _mm512_maskz_mov_ps(m, e));
        _mm512_mask_storeu_ps(x + p, m, e);
    }
    const __m512 sum = _mm512_set1_ps(_mm512_reduce_add_ps(vsum));
    for (int p = 0; p < n; p += 16) {
        const __mmask16 m = lanes16(n - p);
        _mm512_mask_storeu_ps(x + p, m, _mm512_div_ps(_mm512_maskz_loadu_ps(m, x + p), sum));
    }
}

__attribute__((target("avx512f"))) static void silu_mul_512(float *g, const float *u, size_t n) {
    const __m512 one = _mm512_set1_ps(1);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512 v = _mm512_loadu_ps(g + i);
        const __m512 e = _ZGVeN16v_expf(_mm512_sub_ps(_mm512_setzero_ps(), v));
        _mm512_storeu_ps(g + i, _mm512_mul_ps(_mm512_div_ps(v, _mm512_add_ps(one, e)), _mm512_loadu_ps(u + i)));
    }
    silu_mul_ref(g + i, u + i, n - i);
}

/* The same in 256-bit vectors: AVX2 has no masked loads of a chosen fill,
 * so the tail (n % 8 values) goes through the reference's loops. */
__attribute__((target("avx2"))) static void softmax_avx2(float *x, int n) {
    const int n8 = n / 8 * 8;
    __m256 vmax = _mm256_set1_ps(-INFINITY), vsum = _mm256_setzero_ps();
    for (int p = 0; p < n8; p += 8)
        vmax = _mm256_max_ps(_mm256_loadu_ps(x + p), vmax); /* NaN: keeps vmax */
    float lanes[8], max = -INFINITY, sum = 0;
    _mm256_storeu_ps(lanes, vmax);
    for (int i = 0; i < 8; i++)
        max = lanes[i] > max ? lanes[i] : max;
    for (int p = n8; p < n; p++)
        max = x[p] > max ? x[p] : max;
    for (int p = 0; p < n8; p += 8) {
        const __m256 e = _ZGVdN8v_expf(_mm256_sub_ps(_mm256_loadu_ps(x + p), _mm256_set1_ps(max)));
        vsum = _mm256_add_ps(vsum, e);
        _mm256_storeu_ps(x + p, e);
    }
    _mm256_storeu_ps(lanes, vsum);
    for (int i = 0; i < 8; i++)
        sum += lanes[i];
    for (int p = n8; p < n; p++)
        sum += x[p] = expf(x[p] - max);
    for (int p = 0; p < n8; p += 8)
        _mm256_storeu_ps(x + p, _mm256_div_ps(_mm256_loadu_ps(x + p), _mm256_set1_ps(sum)));
    for (int p = n8; p < n; p++)
        x[p] /= sum;
}

__attribute__((target("avx2"))) static void silu_mul_avx2(float *g, const float *u, size_t n) {
    const __m256 one = _mm256_set1_ps(1);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(g + i);
        const __m256 e = _ZGVdN8v_expf(_mm256_sub_ps(_mm256_setzero_ps(), v));
        _mm256_storeu_ps(g + i, _mm256_mul_ps(_mm256_div_ps(v, _mm256_add_ps(one, e)), _mm256_loadu_ps(u + i)));
    }
    silu_mul_ref(g + i, u + i, n - i);
}
#endif

kernel_act kernel_get_act(int level) {
#if defined(__x86_64__)
    if (level >= KERNEL_AVX512VNNI)
        return (kernel_act){softmax_512, silu_mul_512};
    if (level >= KERNEL_AVX2)
        return (kernel_act){softmax_avx2, silu_mul_avx2};
#endif
    (void)level;
    return (kernel_act){softmax_ref, silu_mul_ref};
}

kernel_attn kernel_get_attn(int level) {
#if defined(__x86_64__)
    if (level >= KERNEL_AVX512VNNI)
        return (kernel_attn){attn_qk_512, attn_wv_512};
    if (level >= KERNEL_AVX2)
        return (kernel_attn){attn_qk_avx2, attn_wv_avx2};
#endif
    (void)level;
    return (kernel_attn){attn_qk_ref, attn_wv_ref};
}

/* ---- dispatch ------------------------------------------------------------------ */

static quantize_block_fn quantize_block_get(void) {
#if defined(__x86_64__)
    if (kernel_level() >= KERNEL_AVX512VNNI)
        return quantize_block_512;
#endif
    return quantize_block;
}


int kernel_level(void) {
    static int level = -1;
    if (level >= 0)
        return level;
    int l = KERNEL_SCALAR;
#if defined(__x86_64__)
    /* cpuid, and xgetbv for the state the OS saves (the same on gcc and clang) */
    unsigned a, b, c, d;
    if (__get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 27))) {
        unsigned lo, hi;
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        int fma = c & (1u << 12), avx = c & (1u << 28), f16c = c & (1u << 29);
        int ymm = (lo & 6) == 6, zmm = (lo & 0xe6) == 0xe6;
        unsigned a0, vendor[3], fam = (a >> 8) & 0xf;
        if (fam == 0xf)
            fam += (a >> 20) & 0xff;
        if (__get_cpuid(0, &a0, &vendor[0], &vendor[2], &vendor[1]) && memcmp(vendor, "AuthenticAMD", 12) == 0 &&
            fam == 25) { /* Zen 3 and 4 */
            x16_pf[0] = X16_PF_NONE;
            x16_pf[1] = X16_PF_L2;
        }
        unsigned b7 = 0, c7 = 0, a7, d7;
        if (__get_cpuid_count(7, 0, &a7, &b7, &c7, &d7)) {
            if (fma && avx && f16c && ymm && (b7 & (1u << 5)))
                l = KERNEL_AVX2;
            if (l == KERNEL_AVX2 && zmm && (b7 & (1u << 16)) && (b7 & (1u << 30)) && (b7 & (1u << 31)) &&
                (c7 & (1u << 11)))
                l = KERNEL_AVX512VNNI;
        }
    }
    const char *pf = getenv("CAI_X16_PREFETCH");
    const int force = !pf ? -1 : !strcmp(pf, "none") ? X16_PF_NONE : !strcmp(pf, "l2") ? X16_PF_L2
                               : !strcmp(pf, "l1") ? X16_PF_L1 : -1;
    if (force >= 0)
        x16_pf[0] = x16_pf[1] = force;
#endif
    const char *cap = getenv("CAI_KERNEL");
    if (cap && strcmp(cap, "scalar") == 0)
        l = KERNEL_SCALAR;
    else if (cap && strcmp(cap, "avx2") == 0 && l > KERNEL_AVX2)
        l = KERNEL_AVX2;
    level = l;
    return level;
}

const char *kernel_level_name(int level) {
    return level == KERNEL_AVX512VNNI ? "avx512-vnni" : level == KERNEL_AVX2 ? "avx2" : "scalar";
}

kernel_dot kernel_get(int type, int level) {
    kernel_dot k = {0};
    switch (type) {
    case GGML_TYPE_F32: k.f = dot_f32_ref; break;
    case GGML_TYPE_F16: k.f = dot_f16_ref; break;
    case GGML_TYPE_BF16: k.f = dot_bf16_ref; break;
    case GGML_TYPE_Q8_0: k.q = dot_q8_0_ref; break;
    case GGML_TYPE_Q4_0: k.q = dot_q4_0_ref; break;
    case GGML_TYPE_Q4_1: k.q = dot_q4_1_ref; break;
    case GGML_TYPE_Q5_0: k.q = dot_q5_0_ref; break;
    case GGML_TYPE_Q5_1: k.q = dot_q5_1_ref; break;
    case GGML_TYPE_Q4_K: k.q = dot_q4_K_ref; break;
    case GGML_TYPE_Q5_K: k.q = dot_q5_K_ref; break;
    case GGML_TYPE_Q6_K: k.q = dot_q6_K_ref; break;
    default: return k;
    }
#if defined(__x86_64__)
#define PICK(suf)                                                                              \
    switch (type) {                                                                            \
    case GGML_TYPE_F32: k.f = dot_f32_##suf; break;                                            \
    case GGML_TYPE_F16: k.f = dot_f16_##suf; break;                                            \
    case GGML_TYPE_Q8_0: k.q = dot_q8_0_##suf; break;                                          \
    case GGML_TYPE_Q4_0: k.q = dot_q4_0_##suf; break;                                          \
    case GGML_TYPE_Q4_1: k.q = dot_q4_1_##suf; break;                                          \
    case GGML_TYPE_Q5_0: k.q = dot_q5_0_##suf; break;                                          \
    case GGML_TYPE_Q5_1: k.q = dot_q5_1_##suf; break;                                          \
    case GGML_TYPE_Q4_K: k.q = dot_q4_K_##suf; break;                                          \
    case GGML_TYPE_Q5_K: k.q = dot_q5_K_##suf; break;                                          \
    case GGML_TYPE_Q6_K: k.q = dot_q6_K_##suf; break;                                          \
    default: break;                                                                            \
    }
    if (level >= KERNEL_AVX512VNNI) {
        PICK(vnni)
        k.qn = type == GGML_TYPE_Q4_0   ? dotn_q4_0_512
               : type == GGML_TYPE_Q8_0 ? dotn_q8_0_512
               : type == GGML_TYPE_Q4_K ? dotn_q4_K_512
               : type == GGML_TYPE_Q6_K ? dotn_q6_K_512
                                    : NULL;
        switch (type) {
        case GGML_TYPE_Q4_0: k.pack = pack_q4_0_512; break;
        case GGML_TYPE_Q8_0: k.pack = pack_q8_0_512; break;
        case GGML_TYPE_Q4_K: k.pack = pack_q4_K_512; break;
        case GGML_TYPE_Q6_K: k.pack = pack_q6_K_512; break;
        default: break;
        }
        if (k.pack) {
            k.tile = type == GGML_TYPE_Q6_K ? tile_dot16_512 : tile_dot_512;
            k.tile_exact = type == GGML_TYPE_Q6_K ? tile_exact16_512 : tile_exact_512;
            k.tile_block = type == GGML_TYPE_Q6_K ? KERNEL_TILE_BLOCK16 : KERNEL_TILE_BLOCK;
        }
        if (type == GGML_TYPE_Q8_0) {
            k.x16 = x16_dot_q8_0_512;
            k.x16_exact = x16_exact_q8_0_512;
        } else if (type == GGML_TYPE_Q4_0) {
            k.x16 = x16_dot_q4_0_512;
            k.x16_exact = x16_exact_q4_0_512;
        } else if (type == GGML_TYPE_Q4_K) {
            k.x16 = x16_dot_q4_K_512;
            k.x16_exact = x16_exact_q4_K_512;
            k.x16_tile = x16_tile_q4_K_512;
        } else if (type == GGML_TYPE_Q6_K) {
            k.x16 = x16_dot_q6_K_512;
            k.x16_exact = x16_exact_q6_K_512;
            k.x16_tile = x16_tile_q6_K_512;
        }
    } else if (level >= KERNEL_AVX2) {
        PICK(avx2)
    }
#undef PICK
#endif
    return k;
}
