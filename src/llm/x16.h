/* x16.h - the stored interleaved weight layout "x16" (internal to llm).
 *
 * A Q8_0, Q4_0, Q4_K or Q6_K weight matrix in x16 holds each group of 16
 * consecutive rows (16g .. 16g + 15) in exactly the bytes those rows take
 * in the file, rearranged so that one vpdpbusd multiplies four values of
 * each of the 16 rows by the same four activation values (the tiles of
 * kernels.h, stored instead of packed per product). Each field of a block
 * is stored transposed: unit k of the 16 rows side by side, lane l (bytes
 * 4l .. 4l + 3, or 2l .. 2l + 1 for a two-byte unit) = unit k of row l.
 * Per block i of a group (the file's block, so 32 values for Q8_0 and
 * Q4_0, a 256-value super-block for Q4_K and Q6_K), at i times 16 rows'
 * block bytes:
 *   - Q8_0 (544 bytes): the quants, eight 64-byte vectors, vector k lane l
 *     = values 4k .. 4k + 3 of row l made unsigned (q + 128); then the 16
 *     f16 scales (32 bytes).
 *   - Q4_0 (288): the quants, four vectors, vector k lane l = qs bytes 4k
 *     .. 4k + 3 of row l (low nibbles values 4k .. 4k + 3, high nibbles
 *     values 16 + 4k .. 16 + 4k + 3); then the 16 f16 scales.
 *   - Q4_K (2304): the quants, 32 vectors, vector 8c + v lane l = qs bytes
 *     32c + 4v .. 32c + 4v + 3 of row l (low nibbles values 4v .. 4v + 3 of
 *     sub-block 2c, high nibbles the same of sub-block 2c + 1); then the
 *     12 bytes of 6-bit scales and minimums as three vectors of dwords;
 *     then 16 dwords d | dmin << 16 (X16_Q4_K_*).
 *   - Q6_K (3360): ql as 32 vectors of dwords, qh as 16, the 16 signed
 *     scales as four, then the 16 f16 d (X16_Q6_K_*).
 * So a group is one stream, as the file's rows are, with each block's
 * scales next to its quants (all the quants first, then the scales, was
 * measured slower on Q4_0: two streams per group, the short one retrained
 * every group). The rows past the last whole group (ne1 % 16) stay in the
 * file's layout.
 *
 * The rewrite happens once, in place, after the file's digest was checked
 * (llm_engine_open_mem), and only at the AVX-512 VNNI level, whose
 * kernels read it directly (kernel_dot.x16, .x16_exact; for products
 * with many rows, Q4_K and Q6_K groups are unpacked once into a tile,
 * .x16_tile). */
#ifndef CAI_LLM_X16_H
#define CAI_LLM_X16_H

#include <stddef.h>
#include <stdint.h>

#include "common/status.h"
#include "gguf/gguf.h"

enum { X16_ROWS = 16 };
enum { X16_QUANTS_Q8_0 = 512, X16_QUANTS_Q4_0 = 256 };

/* Where Q8_0's or Q4_0's block |i|'s quants and its 16 scales sit in a
 * group, with |qb| bytes of quants per block (X16_QUANTS_*). */
static inline size_t x16_quants_at(size_t qb, size_t i) { return i * (qb + 32); }
static inline size_t x16_scales_at(size_t qb, size_t i) { return i * (qb + 32) + qb; }

/* A Q4_K super-block of a group: the quants at 0, the scales' three
 * vectors at X16_Q4_K_SCALES, the d | dmin << 16 at X16_Q4_K_D; the next
 * super-block at X16_Q4_K_BYTES. Q6_K's: ql at 0, qh, scales, d. */
enum { X16_Q4_K_SCALES = 2048, X16_Q4_K_D = 2240, X16_Q4_K_BYTES = 2304 };
enum { X16_Q6_K_QH = 2048, X16_Q6_K_SCALES = 3072, X16_Q6_K_D = 3328, X16_Q6_K_BYTES = 3360 };

/* The layout of a weight tensor's bytes. */
typedef enum { LLM_LAYOUT_FILE = 0, LLM_LAYOUT_X16 = 1 } llm_layout;

/* x16_eligible says whether a tensor of |type| with |n_dims| dimensions
 * |ne| is rewritten into x16: a 2-D Q8_0 or Q4_0 matrix, or Q4_K or Q6_K
 * whose rows are whole super-blocks (ne0 % 256 == 0), with at least one
 * whole group of 16 rows. */
int x16_eligible(int type, int n_dims, const int64_t ne[4]);

/* x16_pack rewrites |groups| whole groups of 16 rows of |ne0| values of
 * |type| (Q8_0, Q4_0, Q4_K or Q6_K) from the file's layout at |src| into x16 at |dst|
 * (the same byte count; the two must not overlap). x16_unpack is its
 * inverse. */
void x16_pack(int type, int64_t ne0, const uint8_t *src, uint8_t *dst, int64_t groups);
void x16_unpack(int type, int64_t ne0, const uint8_t *src, uint8_t *dst, int64_t groups);

/* x16_get_row dequantizes row |l| (0..15) of the x16 group at |group|
 * into |out| (ne0 floats), bit for bit as quant_dequantize_row does the
 * same row in the file's layout. */
void x16_get_row(int type, int64_t ne0, const uint8_t *group, int l, float *out);

/* x16_rewrite_mem rewrites, in place in |base| (the bytes of the GGUF |g|
 * was parsed from), every tensor x16_eligible into x16: a batch of whole
 * groups copied to a small buffer and packed back, the batches spread over
 * |n_threads| (0: one per CPU). Returns CAI_OK and the bytes rewritten in
 * |out_bytes|, or CAI_ERR_NOMEM (the model then partly rewritten: the
 * caller drops it). */
cai_status x16_rewrite_mem(const gguf_file *g, uint8_t *base, int n_threads, uint64_t *out_bytes);

#endif
