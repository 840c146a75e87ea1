/* kernels.h - dot products of weight rows with activations (internal to llm).
 *
 * Activations are quantized once per matrix product into blocks of 32
 * int8 values with a float scale and the scaled sum (block_x8); every
 * quantized weight type then dots in integers: Q8_0, Q4_0, Q4_1, Q5_0, Q5_1
 * block by block, and the K-quants (Q4_K, Q5_K, Q6_K) by their 32- or
 * 16-value sub-blocks. F32, F16 and BF16 weights dot with float activations.
 *
 * Each type has a scalar reference and, chosen at run time, AVX2 and
 * AVX-512 VNNI versions; tests/unit/test_kernels.c checks every SIMD
 * version against its reference. At the AVX-512 VNNI level, Q8_0, Q4_0,
 * Q4_K and Q6_K also have 512-bit kernels that take up to four activation
 * rows per pass over a weight row (prefill and batched decode reuse each
 * unpacked block); matmul uses them for one row too. The same four
 * types have tiles (below) for products with many activation rows, in two
 * kinds: the fastest (prefill), and exact ones that round as the
 * several-rows kernels do (kernel_dot.tile_exact): per 32-value block
 * (Q6_K: 16-value sub-block) an exact int32 dot, then two FMAs into one of
 * eight (Q6_K: sixteen) float lanes chosen by the block index, and one
 * fixed sum of the lanes (kernels_avx512.inc). So a row's result from qn
 * or tile_exact never depends on how many rows are multiplied with it,
 * nor on which of the two computed it.
 *
 * Q8_0, Q4_0, Q4_K and Q6_K weights may also be stored in the tiles'
 * layout (x16.h, rewritten once at load): kernel_dot.x16_exact and .x16
 * read 16 rows from it directly, with no packing, in the same two kinds. */
#ifndef CAI_LLM_KERNELS_H
#define CAI_LLM_KERNELS_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    float d;   /* scale: x ~= d * q */
    float s;   /* d * sum(q) */
    int8_t qs[32];
} block_x8;

/* kernel_quantize_x8 quantizes |n| floats (a multiple of 32) into n/32 blocks. */
void kernel_quantize_x8(const float *x, block_x8 *y, int64_t n);

/* A row dot product: |w| is one weight row of |n| values of its type. */
typedef float (*kernel_dot_q)(const void *w, const block_x8 *x, int64_t n);
typedef float (*kernel_dot_f)(const void *w, const float *x, int64_t n);

/* Activation rows quantized as for block_x8 but stored by field, for the
 * several-rows kernels: row t's n values at qs + t * n, its n / 32 block
 * scales at d + t * (n / 32) and scaled sums at s + t * (n / 32), and the
 * scaled sums of each half block at s16 + t * (n / 16) (for Q6_K, whose
 * scales cover 16 values: its several-rows kernel and tiles need them). */
typedef struct {
    const int8_t *qs;
    const float *d, *s, *s16;
    int64_t n;
} kernel_xrows;

/* kernel_quantize_xrow quantizes |n| floats (a multiple of 32) exactly as
 * kernel_quantize_x8 does, into |qs| (n bytes), |d| and |s| (n / 32 each)
 * and, unless NULL, |s16| (n / 16). */
void kernel_quantize_xrow(const float *x, int64_t n, int8_t *qs, float *d, float *s, float *s16);

/* One weight row with activation rows t0 .. t0 + nt - 1 (nt 1..4) of |x|:
 * out[t] = dot(w, row t0 + t). Reads and unpacks the weights once. */
typedef void (*kernel_dot_qn)(const void *w, const kernel_xrows *x, int t0, int nt, float *out);

/* Tiles, for matrix products with many activation rows (prefill): 16
 * weight rows repacked so that one instruction multiplies four values of
 * each of the 16 rows by the same four activation values. Per 32-value
 * block, KERNEL_TILE_BLOCK bytes: eight 64-byte vectors of unsigned quants
 * (vector k holds values 4k .. 4k+3 of row l at bytes 4l .. 4l+3), then
 * the 16 rows' float scales and float offsets (value = scale * q + offset).
 * A tile takes n / 32 * KERNEL_TILE_BLOCK bytes, 64-byte aligned. */
enum { KERNEL_TILE_ROWS = 16, KERNEL_TILE_BLOCK = 640, KERNEL_TILE_XROWS = 8 };
/* Q6_K's tiles: a scale per 16 values, so per block the quants, then the
 * scales of the first and the second 16 values, then their offsets. */
enum { KERNEL_TILE_BLOCK16 = 768 };

/* Packs the 16 rows w, w + stride, ... of |n| values into |tile|. */
typedef void (*kernel_tile_pack)(const uint8_t *w, size_t stride, int64_t n, uint8_t *tile);

/* out[t * ldo + l] = dot(row l of |tile|, activation row t0 + t) for t <
 * nt, nt 1 .. KERNEL_TILE_XROWS. The exact kind (tile_exact) gives each
 * bit for bit what the several-rows kernel gives for that weight row and
 * activation row, whatever nt and t0; the other kind (tile) keeps one
 * accumulator per activation row and is about a third faster on
 * AMD Zen 4, where both are bound by vpdpbusd and the exact kind's eight
 * accumulators per row do not fit in registers. */
typedef void (*kernel_tile_dot)(const uint8_t *tile, const kernel_xrows *x, int t0, int nt, float *out, size_t ldo);

typedef struct {
    kernel_dot_q q;   /* for quantized types: activations as block_x8 */
    kernel_dot_f f;   /* for F32/F16/BF16: activations as floats */
    kernel_dot_qn qn; /* where the level has one: several activation rows per pass */
    kernel_tile_pack pack; /* and where it has tiles (only with qn): */
    kernel_tile_dot tile;  /* the packing and the tile product, */
    kernel_tile_dot tile_exact; /* the same in qn's order of rounding */
    size_t tile_block;     /* KERNEL_TILE_BLOCK or KERNEL_TILE_BLOCK16 */
    /* Q8_0, Q4_0, Q4_K and Q6_K at the AVX-512 VNNI level: the products
     * of a group of 16 weight rows stored in the x16 layout (x16.h; the
     * tile argument is the group), with nt 1 .. KERNEL_TILE_XROWS
     * activation rows, no packing: x16_exact bit for bit what qn gives for each weight row and
     * activation row (the canonical order below), x16 rounding as tile. */
    kernel_tile_dot x16, x16_exact;
    /* Q4_K and Q6_K also: a group in x16 into the tile pack makes from
     * the same rows in the file's layout, byte for byte (the stride
     * argument unused), for products with many activation rows, where
     * the x16 kernels would unpack the group once per KERNEL_TILE_XROWS. */
    kernel_tile_pack x16_tile;
} kernel_dot;


enum { KERNEL_SCALAR = 0, KERNEL_AVX2 = 1, KERNEL_AVX512VNNI = 2 };

/* kernel_level returns the best level this CPU supports (and CAI_KERNEL
 * =scalar|avx2 in the environment caps it, for comparisons). */
int kernel_level(void);
const char *kernel_level_name(int level);

/* kernel_get returns the dot product of |type| at |level| (falling back to
 * lower levels where a version is missing); both members NULL if the type
 * has no kernel. */
kernel_dot kernel_get(int type, int level);

/* Attention for the query heads that share one KV head (grouped-query
 * attention): keys and values are f16 rows |stride| halves apart, n
 * positions; nq heads of D values each.
 *   qk: sc[u * sstride + p] = scale * dot(key row p, q + u * D)
 *   wv: o[u * D + i] += sum over p of sc[u * sstride + p] * value row p [i]
 * Each key and value row is read and converted once for all nq heads. */
typedef struct {
    void (*qk)(const uint16_t *k, size_t stride, int n, const float *q, int nq, int D, float scale, float *sc,
               size_t sstride);
    void (*wv)(const uint16_t *v, size_t stride, int n, const float *sc, size_t sstride, int nq, int D, float *o);
} kernel_attn;

/* kernel_get_attn returns the attention kernels at |level|. */
kernel_attn kernel_get_attn(int level);

/* The element-wise kernels around the products, whose expf is glibc's
 * vector one (libmvec) at the SIMD levels:
 *   softmax:  x[p] = exp(x[p] - max) / sum over p of the same, in place,
 *             n >= 1 (the maximum skips NaN, as fmaxf does)
 *   silu_mul: g[i] = g[i] / (1 + exp(-g[i])) * u[i] */
typedef struct {
    void (*softmax)(float *x, int n);
    void (*silu_mul)(float *g, const float *u, size_t n);
} kernel_act;

kernel_act kernel_get_act(int level);

#endif
