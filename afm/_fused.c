/* AFM's pairwise-interaction and attention-pooling layers, fused per sample, forward and backward.
 *
 * Plain C, no Python or torch headers: afm/native.py compiles this file once per machine (about
 * a second) and afm/_bridge.py calls it through ctypes on float32 tensors' memory, with one
 * argument struct (afm_args, below). Every sample's pair vectors u_ij = e_i * e_j, the attention
 * network's hidden layer and its scores stay in cache: nothing of size [B, P, k] or [B, P, t] is
 * ever written to memory, which is what the unfused version spends its time on. The backward pass
 * recomputes u_ij and W u_ij + b from e (cheap) rather than storing them.
 *
 * Layouts (row-major, contiguous): e [B, F, k]; W [t, k]; b, h [t]; keep, score, attention [B, P];
 * pooled [B, k]; p [k] and interaction [B, P] (optional). Pairs in torch.triu_indices order:
 * (0,1), (0,2), ..., (0,F-1), (1,2), ...
 *
 * Threads: rows are split into one contiguous block per thread (see run()). The parameter gradients are
 * summed per sample in float, then per thread in double, then over the threads in a fixed order,
 * so a given thread count always gives the same bits, and different counts agree to float
 * rounding.
 *
 * Vector width and register blocks: chosen here from the target the compiler builds for, so that
 * the blocks fit the target's registers. AVX-512 (32 registers of 16 floats): VL = 16, blocks of
 * PB = 8 pairs by one vector. AVX/AVX2 (16 registers of 8): VL = 8, blocks of 4 pairs by QB = 2
 * vectors (8 accumulators; 16 wide vectors there were pairs of registers, and spilled). ARM (32
 * registers of 4): the same as AVX2, each vector two registers. Elsewhere (SSE2, the portable
 * x86-64 baseline, 16 registers of 4): VL = 4, 4 pairs by 2 vectors. Measured on an AMD EPYC
 * (docs/PLATFORMS.md). -DAFM_VL=4|8|16, -DAFM_PB=4|8 and -DAFM_QB=1|2 override the choice.
 */
#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define AFM_ABI 2 /* bump when afm_args or a signature changes (afm/_bridge.py checks it) */
#ifndef AFM_SOURCE_ID /* afm/native.py passes a hash of this file's text: a stale library is recognised */
#define AFM_SOURCE_ID "unversioned"
#endif

/* GCC/Clang vector extensions: VL floats per vector; PB pairs (or rows of dW) per register block. */
#ifndef AFM_VL
#if defined(__AVX512F__)
#define AFM_VL 16
#elif defined(__AVX__) || defined(__aarch64__) || defined(__ARM_NEON)
#define AFM_VL 8
#else
#define AFM_VL 4
#endif
#endif
#ifndef AFM_QB /* vectors per block across: 2 where registers are 16 vectors of VL (AVX2, SSE2) */
#if AFM_VL == 16
#define AFM_QB 1
#else
#define AFM_QB 2
#endif
#endif
#ifndef AFM_PB
#if AFM_QB == 1
#define AFM_PB 8
#else
#define AFM_PB 4
#endif
#endif
#define VL AFM_VL
#define PB AFM_PB
#define QB AFM_QB
#define VB (VL * QB) /* floats per block across */
#if VL != 4 && VL != 8 && VL != 16
#error "AFM_VL must be 4, 8 or 16"
#endif
#if PB != 4 && PB != 8
#error "AFM_PB must be 4 or 8"
#endif
#if QB != 1 && QB != 2
#error "AFM_QB must be 1 or 2"
#endif
#define PAD (VB > PB ? VB : PB) /* pairs, hidden units and columns are padded to a multiple of this */

typedef float vf __attribute__((vector_size(4 * VL), aligned(4)));
typedef int32_t vi __attribute__((vector_size(4 * VL), aligned(4)));

static inline vf load(const float *p) { return *(const vf *)p; }
static inline void store(float *p, vf v) { *(vf *)p = v; }
static inline vf splat(float x) { return (vf){0} + x; }
/* torch's ReLU: max(z, 0), but NaN stays NaN (as threshold_backward lets NaN's gradient through) */
static inline vi positive_or_nan(vf z) { return (z > 0.0f) | (z != z); }
static inline vf relu(vf z) { return (vf)((vi)z & positive_or_nan(z)); }
static inline float hsum(vf v) { /* a tree of halves */
    float x[VL];
    memcpy(x, &v, sizeof x);
    for (int w = VL / 2; w > 0; w /= 2)
        for (int l = 0; l < w; l++) x[l] += x[l + w];
    return x[0];
}
/* exp(x) for x <= 0 (softmax's x - max), VL at a time: Cody-Waite reduction x = n ln2 + r, the
 * Cephes polynomial for exp(r) (about 1 ulp), and 2^n put into the exponent bits; exp(x) = 0
 * below -87 (where float's exp leaves its normal range; those weights are < 1e-37 of the largest). */
static inline vf vexp(vf x) {
    const vi tiny = x < -87.0f;
    x = (vf)(((vi)x & ~tiny) | ((vi)splat(-87.0f) & tiny));
    const vf shifted = x * 1.44269504088896341f + 12582912.0f; /* 1.5 * 2^23: rounds to nearest */
    const vi n = (vi)shifted - 0x4B400000;
    const vf nf = shifted - 12582912.0f;
    const vf r = x - nf * 0.693359375f + nf * 2.12194440e-4f;
    vf p = splat(1.9875691500e-4f);
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    const vi nan = x != x; /* NaN in, NaN out: a diverged model must not look finite */
    const vi bits = ((vi)p + (n << 23)) & ~tiny;
    return (vf)((bits & ~nan) | ((vi)x & nan));
}

/* sums[m] = the sum of v[m]'s lanes, for VL vectors at once: log2(VL) rounds of "shuffle halves
 * together and add" (for VL = 16: 64 shuffles and adds for 16 sums, instead of 16 reduction chains). */
#if defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 12)
#define SHUFFLE __builtin_shufflevector
static void hsum_rows(vf v[VL], float sums[VL]) {
#if VL == 16
    for (int m = 0; m < 8; m++) /* lanes 0-7: vector m, 8-15: vector m + 8 */
        v[m] = SHUFFLE(v[m], v[m + 8], 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23) +
               SHUFFLE(v[m], v[m + 8], 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31);
    for (int m = 0; m < 4; m++) /* blocks of 4 lanes: vectors m, m+4, m+8, m+12 */
        v[m] = SHUFFLE(v[m], v[m + 4], 0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27) +
               SHUFFLE(v[m], v[m + 4], 4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31);
    for (int m = 0; m < 2; m++) /* blocks of 2 lanes: vectors m, m+2, ..., m+14 */
        v[m] = SHUFFLE(v[m], v[m + 2], 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29) +
               SHUFFLE(v[m], v[m + 2], 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31);
    store(sums, SHUFFLE(v[0], v[1], 0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30) +
                    SHUFFLE(v[0], v[1], 1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31));
#elif VL == 8
    for (int m = 0; m < 4; m++) /* lanes 0-3: vector m, 4-7: vector m + 4 */
        v[m] = SHUFFLE(v[m], v[m + 4], 0, 1, 2, 3, 8, 9, 10, 11) + SHUFFLE(v[m], v[m + 4], 4, 5, 6, 7, 12, 13, 14, 15);
    for (int m = 0; m < 2; m++) /* blocks of 2 lanes: vectors m, m+2, m+4, m+6 */
        v[m] = SHUFFLE(v[m], v[m + 2], 0, 1, 8, 9, 4, 5, 12, 13) + SHUFFLE(v[m], v[m + 2], 2, 3, 10, 11, 6, 7, 14, 15);
    store(sums, SHUFFLE(v[0], v[1], 0, 8, 2, 10, 4, 12, 6, 14) + SHUFFLE(v[0], v[1], 1, 9, 3, 11, 5, 13, 7, 15));
#else
    for (int m = 0; m < 2; m++) /* lanes 0-1: vector m, 2-3: vector m + 2 */
        v[m] = SHUFFLE(v[m], v[m + 2], 0, 1, 4, 5) + SHUFFLE(v[m], v[m + 2], 2, 3, 6, 7);
    store(sums, SHUFFLE(v[0], v[1], 0, 4, 2, 6) + SHUFFLE(v[0], v[1], 1, 5, 3, 7));
#endif
}
#else /* compilers without __builtin_shufflevector: one reduction per vector */
static void hsum_rows(vf v[VL], float sums[VL]) {
    for (int m = 0; m < VL; m++) sums[m] = hsum(v[m]);
}
#endif

/* out[p] = y . f(X[p]) for the rows p of X [rows, stride] (rows a multiple of VL), f = ReLU or
 * identity, over the first `width` columns (a multiple of VL; the padding of y is zero). */
static void row_dots(const float *X, int64_t rows, int64_t stride, int64_t width, const float *y, int with_relu,
                     float *out) {
    for (int64_t p0 = 0; p0 < rows; p0 += VL) {
        vf v[VL];
        for (int m = 0; m < VL; m++) {
            const float *x = X + (p0 + m) * stride;
            vf s = {0};
            for (int64_t c0 = 0; c0 < width; c0 += VL) {
                const vf xc = load(x + c0);
                s += load(y + c0) * (with_relu ? relu(xc) : xc);
            }
            v[m] = s;
        }
        hsum_rows(v, out + p0);
    }
}

static inline int64_t round_up(int64_t n, int64_t m) { return (n + m - 1) / m * m; }

typedef struct {
    /* inputs; Wt [k, tp] and Wp [tp, kp] are W transposed / padded with zeros, bias and h padded to tp */
    const float *e, *Wt, *Wp, *bias, *h, *proj, *keep, *attention, *grad_pooled, *grad_score, *grad_attention;
    /* outputs (interaction: optional, s_ij = p . u_ij for explanations) */
    float *pooled, *score, *attention_out, *interaction, *grad_e;
    double *acc; /* backward: this thread's sums of dW [tp*kp], db [tp], dh [tp] */
    int64_t begin, end;
    int64_t F, k, t, kp, tp;
    int status; /* 0 ok, 1 out of memory */
} Job;

/* U [Pp, kp]: the row's pair vectors u_ij = e_i * e_j, one per line; padding stays zero. */
static void pair_vectors(const float *er, int64_t F, int64_t k, int64_t kp, float *U) {
    int64_t p = 0;
    for (int64_t i = 0; i < F - 1; i++)
        for (int64_t j = i + 1; j < F; j++, p++) {
            const float *ei = er + i * k, *ej = er + j * k;
            float *u = U + p * kp;
#pragma omp simd
            for (int64_t c = 0; c < k; c++) u[c] = ei[c] * ej[c];
        }
}

/* Z [Pp, tp] = U W^T + b, PB pairs x VB hidden units at a time in registers (PB x QB vectors). */
static void hidden(const float *U, int64_t Pp, int64_t k, int64_t kp, const float *Wt, const float *bias, int64_t tp,
                   float *Z) {
    for (int64_t p0 = 0; p0 < Pp; p0 += PB)
        for (int64_t q0 = 0; q0 < tp; q0 += VB) {
            vf a[PB][QB];
            const float *u = U + p0 * kp;
#pragma GCC unroll 8
            for (int m = 0; m < PB; m++)
                for (int j = 0; j < QB; j++) a[m][j] = load(bias + q0 + j * VL);
            for (int64_t c = 0; c < k; c++) {
                vf w[QB];
                for (int j = 0; j < QB; j++) w[j] = load(Wt + c * tp + q0 + j * VL);
#pragma GCC unroll 8
                for (int m = 0; m < PB; m++) {
                    const float x = u[m * kp + c];
                    for (int j = 0; j < QB; j++) a[m][j] += x * w[j];
                }
            }
#pragma GCC unroll 8
            for (int m = 0; m < PB; m++)
                for (int j = 0; j < QB; j++) store(Z + (p0 + m) * tp + q0 + j * VL, a[m][j]);
        }
}

typedef struct {
    float *U, *Z, *dZ, *gU, *w, *gp, *rW, *rb, *rh, *s, *a, *E, *gE;
} Scratch;

/* One thread's buffers for one row at a time: pairs padded to Pp (a multiple of PAD) with zero
 * rows, embeddings to kp columns with zeros (E, gE [F, kp]). */
static float *scratch(Scratch *S, int64_t F, int64_t Pp, int64_t kp, int64_t tp) {
    const int64_t n = Pp * kp + 2 * Pp * tp + Pp * kp + Pp + kp + tp * kp + 2 * tp + 2 * Pp + 2 * F * kp;
    float *all = calloc((size_t)n, sizeof(float));
    if (all == NULL) return NULL;
    S->U = all, S->Z = S->U + Pp * kp, S->dZ = S->Z + Pp * tp, S->gU = S->dZ + Pp * tp, S->w = S->gU + Pp * kp;
    S->gp = S->w + Pp, S->rW = S->gp + kp, S->rb = S->rW + tp * kp, S->rh = S->rb + tp, S->s = S->rh + tp;
    S->a = S->s + Pp, S->E = S->a + Pp, S->gE = S->E + F * kp;
    return all;
}

static void forward_rows(Job *J, Scratch S) {
    const int64_t F = J->F, k = J->k, kp = J->kp, tp = J->tp, P = F * (F - 1) / 2, Pp = round_up(P, PAD);
    for (int64_t r = J->begin; r < J->end; r++) {
        const float *er = J->e + r * F * k;
        float *att = J->attention_out + r * P, *out = J->pooled + r * k;
        pair_vectors(er, F, k, kp, S.U);
        hidden(S.U, Pp, k, kp, J->Wt, J->bias, tp, S.Z);
        row_dots(S.Z, Pp, tp, tp, J->h, 1, S.s); /* a'_p = h . ReLU(z_p) */
        memcpy(J->score + r * P, S.s, sizeof(float) * (size_t)P);
        if (J->interaction) { /* s_ij = p . u_ij, the pair's term before attention (explanations) */
            row_dots(S.U, Pp, kp, kp, J->proj, 0, S.a);
            memcpy(J->interaction + r * P, S.a, sizeof(float) * (size_t)P);
        }
        /* softmax over the row's pairs, as torch.softmax: exp(s - max) / sum; the padding's
           scores are -inf, so its exp is 0 */
        for (int64_t p = P; p < Pp; p++) S.s[p] = -INFINITY;
        vf top = load(S.s);
        for (int64_t p0 = VL; p0 < Pp; p0 += VL) {
            const vf x = load(S.s + p0);
            const vi higher = x > top;
            top = (vf)(((vi)x & higher) | ((vi)top & ~higher));
        }
        float m = top[0];
        for (int l = 1; l < VL; l++) m = top[l] > m ? top[l] : m;
        vf sum = {0};
        for (int64_t p0 = 0; p0 < Pp; p0 += VL) {
            const vf x = vexp(load(S.s + p0) - m);
            store(S.a + p0, x);
            sum += x;
        }
        const float inverse = 1.0f / hsum(sum);
#pragma omp simd
        for (int64_t p = 0; p < P; p++) att[p] = S.a[p] * inverse;
        /* pooled = sum_p keep_p a_p u_p */
        if (J->keep)
            for (int64_t p = 0; p < P; p++) S.w[p] = att[p] * J->keep[r * P + p];
        else
            memcpy(S.w, att, sizeof(float) * (size_t)P); /* S.w's padding stays zero */
        for (int64_t c0 = 0; c0 < kp; c0 += VL) {
            vf s4[4] = {{0}}; /* four independent sums: no single chain of P dependent adds */
            for (int64_t p = 0; p < Pp; p += 4)
#pragma GCC unroll 4
                for (int m = 0; m < 4; m++) s4[m] += S.w[p + m] * load(S.U + (p + m) * kp + c0);
            const vf s = (s4[0] + s4[1]) + (s4[2] + s4[3]);
            if (c0 + VL <= k)
                store(out + c0, s);
            else
                for (int64_t c = c0; c < k; c++) out[c] = s[c - c0];
        }
    }
}

static void backward_rows(Job *J, Scratch S) {
    const int64_t F = J->F, k = J->k, kp = J->kp, tp = J->tp, P = F * (F - 1) / 2, Pp = round_up(P, PAD);
    double *aW = J->acc, *ab = aW + tp * kp, *ah = ab + tp;
    for (int64_t r = J->begin; r < J->end; r++) {
        const float *er = J->e + r * F * k, *a = J->attention + r * P;
        const float *keep = J->keep ? J->keep + r * P : NULL;
        float *ge = J->grad_e + r * F * k;
        memcpy(S.gp, J->grad_pooled + r * k, sizeof(float) * (size_t)k); /* padding stays zero */
        pair_vectors(er, F, k, kp, S.U);
        hidden(S.U, Pp, k, kp, J->Wt, J->bias, tp, S.Z);
        /* d a_p: through pooled (u_p . grad_pooled, times the dropout mask) and a's own gradient;
           then the softmax backward gives d a'_p, plus the score's own gradient */
        float dot = 0.0f;
        row_dots(S.U, Pp, kp, kp, S.gp, 0, S.s); /* u_p . grad_pooled */
        for (int64_t p = 0; p < P; p++) {
            if (keep) S.s[p] *= keep[p];
            if (J->grad_attention) S.s[p] += J->grad_attention[r * P + p];
            dot += a[p] * S.s[p];
        }
        for (int64_t p = 0; p < P; p++) { /* S.a: d a'_p; S.w: the pair's weight in pooled */
            S.a[p] = a[p] * (S.s[p] - dot) + (J->grad_score ? J->grad_score[r * P + p] : 0.0f);
            S.w[p] = keep ? a[p] * keep[p] : a[p];
        }
        /* dZ = d a'_p h through the ReLU; this row's d b = sum dZ and d h = sum d a'_p ReLU(z_p) */
        for (int64_t q0 = 0; q0 < tp; q0 += VL) {
            const vf h = load(J->h + q0);
            vf db[2] = {{0}}, dh[2] = {{0}}; /* two chains each, alternating pairs */
            for (int64_t p = 0; p < P; p++) {
                const vf z = load(S.Z + p * tp + q0);
                const vf dz = (vf)((vi)(S.a[p] * h) & positive_or_nan(z));
                store(S.dZ + p * tp + q0, dz);
                db[p & 1] += dz;
                dh[p & 1] += S.a[p] * relu(z);
            }
            store(S.rb + q0, db[0] + db[1]);
            store(S.rh + q0, dh[0] + dh[1]);
        }
        /* gU [Pp, kp] = w_p grad_pooled + dZ W (d u_p), PB pairs x VB columns at a time */
        for (int64_t p0 = 0; p0 < Pp; p0 += PB)
            for (int64_t c0 = 0; c0 < kp; c0 += VB) {
                vf acc[PB][QB];
#pragma GCC unroll 8
                for (int m = 0; m < PB; m++)
                    for (int j = 0; j < QB; j++) acc[m][j] = S.w[p0 + m] * load(S.gp + c0 + j * VL);
                for (int64_t q = 0; q < tp; q++) {
                    vf w[QB];
                    for (int j = 0; j < QB; j++) w[j] = load(J->Wp + q * kp + c0 + j * VL);
#pragma GCC unroll 8
                    for (int m = 0; m < PB; m++) {
                        const float dz = S.dZ[(p0 + m) * tp + q];
                        for (int j = 0; j < QB; j++) acc[m][j] += dz * w[j];
                    }
                }
#pragma GCC unroll 8
                for (int m = 0; m < PB; m++)
                    for (int j = 0; j < QB; j++) store(S.gU + (p0 + m) * kp + c0 + j * VL, acc[m][j]);
            }
        /* rW [tp, kp] = dZ^T U (this row's d W), PB rows x VB columns at a time */
        for (int64_t q0 = 0; q0 < tp; q0 += PB)
            for (int64_t c0 = 0; c0 < kp; c0 += VB) {
                vf acc[PB][QB] = {{{0}}};
                for (int64_t p = 0; p < P; p++) {
                    vf u[QB];
                    for (int j = 0; j < QB; j++) u[j] = load(S.U + p * kp + c0 + j * VL);
                    const float *dz = S.dZ + p * tp + q0;
#pragma GCC unroll 8
                    for (int m = 0; m < PB; m++)
                        for (int j = 0; j < QB; j++) acc[m][j] += dz[m] * u[j];
                }
#pragma GCC unroll 8
                for (int m = 0; m < PB; m++)
                    for (int j = 0; j < QB; j++) store(S.rW + (q0 + m) * kp + c0 + j * VL, acc[m][j]);
            }
        /* d e_i += d u_ij * e_j, d e_j += d u_ij * e_i: e_i's sum in a register over its j */
        for (int64_t f = 0; f < F; f++) memcpy(S.E + f * kp, er + f * k, sizeof(float) * (size_t)k);
        memset(S.gE, 0, sizeof(float) * (size_t)(F * kp));
        for (int64_t c0 = 0; c0 < kp; c0 += VL) {
            int64_t p = 0;
            for (int64_t i = 0; i < F - 1; i++) {
                const vf ei = load(S.E + i * kp + c0);
                vf gi = load(S.gE + i * kp + c0);
                for (int64_t j = i + 1; j < F; j++, p++) {
                    const vf gu = load(S.gU + p * kp + c0);
                    gi += gu * load(S.E + j * kp + c0);
                    store(S.gE + j * kp + c0, load(S.gE + j * kp + c0) + gu * ei);
                }
                store(S.gE + i * kp + c0, gi);
            }
        }
        for (int64_t f = 0; f < F; f++) memcpy(ge + f * k, S.gE + f * kp, sizeof(float) * (size_t)k);
#pragma omp simd
        for (int64_t q = 0; q < tp * kp; q++) aW[q] += S.rW[q];
        for (int64_t q = 0; q < tp; q++) {
            ab[q] += S.rb[q];
            ah[q] += S.rh[q];
        }
    }
}

/* A thread's block of rows, with its own scratch buffers (status 1 when they cannot be had). */
static void with_scratch(Job *J, void (*rows)(Job *, Scratch)) {
    Scratch S;
    const int64_t P = J->F * (J->F - 1) / 2;
    float *all = scratch(&S, J->F, round_up(P, PAD), J->kp, J->tp);
    if (all == NULL) {
        J->status = 1;
        return;
    }
    rows(J, S);
    free(all);
}

static void *forward_thread(void *job) {
    with_scratch((Job *)job, forward_rows);
    return NULL;
}

static void *backward_thread(void *job) {
    with_scratch((Job *)job, backward_rows);
    return NULL;
}

#ifdef AFM_OPENMP
#include <omp.h>
#endif

/* Splits rows [0, B) into n_threads contiguous blocks, one per thread. With AFM_OPENMP (the build
 * links the OpenMP runtime torch itself loaded) the threads are torch's own pool, so the two never
 * compete for cores; otherwise plain pthreads, block 0 on the calling thread. Returns 0, or 1 when
 * memory ran out. */
static int run(Job *base, int64_t B, int n_threads, void *(*work)(void *), double *acc, int64_t acc_size) {
    if (n_threads > 64) n_threads = 64;
    if (n_threads > B) n_threads = (int)B;
    if (n_threads < 1) n_threads = 1;
    Job jobs[64];
    for (int n = 0; n < n_threads; n++) {
        jobs[n] = *base;
        jobs[n].begin = B * n / n_threads;
        jobs[n].end = B * (n + 1) / n_threads;
        jobs[n].acc = acc ? acc + n * acc_size : NULL;
        jobs[n].status = 0;
    }
#ifdef AFM_OPENMP
#pragma omp parallel for num_threads(n_threads) schedule(static, 1)
    for (int n = 0; n < n_threads; n++) work(&jobs[n]);
#else
    pthread_t threads[64];
    int started[64] = {0};
    for (int n = 1; n < n_threads; n++) started[n] = pthread_create(&threads[n], NULL, work, &jobs[n]) == 0;
    work(&jobs[0]);
    for (int n = 1; n < n_threads; n++) {
        if (started[n])
            pthread_join(threads[n], NULL);
        else
            work(&jobs[n]); /* a thread that could not start: its block runs here */
    }
#endif
    int status = 0;
    for (int n = 0; n < n_threads; n++) status |= jobs[n].status;
    return status;
}

/* W [t, k] as Wt [k, tp] and Wp [tp, kp], bias and h as [tp], p as [kp]: zero padding to whole
 * vectors. */
static float *padded(const float *W, const float *bias, const float *h, const float *proj, int64_t t, int64_t k,
                     int64_t tp, int64_t kp) {
    float *buf = calloc((size_t)(k * tp + tp * kp + 2 * tp + kp), sizeof(float));
    if (buf == NULL) return NULL;
    float *Wt = buf, *Wp = Wt + k * tp, *bp = Wp + tp * kp, *hp = bp + tp, *pp = hp + tp;
    for (int64_t q = 0; q < t; q++) {
        for (int64_t c = 0; c < k; c++) Wt[c * tp + q] = Wp[q * kp + c] = W[q * k + c];
        bp[q] = bias[q];
        hp[q] = h[q];
    }
    if (proj)
        for (int64_t c = 0; c < k; c++) pp[c] = proj[c];
    return buf;
}

static void prepare(Job *job, const float *buf, int64_t F, int64_t k, int64_t t) {
    job->F = F, job->k = k, job->t = t, job->kp = round_up(k, VB), job->tp = round_up(t, PAD);
    job->Wt = buf, job->Wp = buf + k * job->tp, job->bias = job->Wp + job->tp * job->kp, job->h = job->bias + job->tp;
    job->proj = job->h + job->tp;
}

/* ------------------------------------------------------------------------ the interface (ctypes) */

/* Everything a call needs, by name (afm/_bridge.py mirrors it field for field as a ctypes
 * Structure). Sizes: e [batch, fields, k], W [t, k], P = fields (fields - 1) / 2. Pointers a call
 * does not use may be NULL. */
typedef struct afm_args {
    int64_t batch, fields, k, t, threads;
    const float *e, *W, *bias, *h; /* [B, F, k], [t, k], [t], [t] */
    const float *keep;             /* [B, P] attention-dropout mask (0 or 1/(1-p)), or NULL */
    const float *proj;             /* forward: p [k], to also give interaction = p . u_ij; or NULL */
    const float *attention;        /* backward: the forward's attention [B, P] */
    const float *grad_pooled;      /* backward: [B, k] */
    const float *grad_score;       /* backward: [B, P], or NULL */
    const float *grad_attention;   /* backward: [B, P], or NULL */
    float *pooled, *score, *attention_out, *interaction; /* forward: [B, k], [B, P], [B, P], [B, P] or NULL */
    float *grad_e, *grad_W, *grad_b, *grad_h;           /* backward: [B, F, k], [t, k], [t], [t] */
} afm_args;

/* 0, or 1 when memory ran out. */
int afm_forward(const afm_args *a) {
    const int64_t k = a->k, t = a->t;
    float *buf = padded(a->W, a->bias, a->h, a->proj, t, k, round_up(t, PAD), round_up(k, VB));
    if (buf == NULL) return 1;
    Job job = {0};
    prepare(&job, buf, a->fields, k, t);
    job.e = a->e, job.keep = a->keep, job.pooled = a->pooled, job.score = a->score;
    job.attention_out = a->attention_out, job.interaction = a->proj ? a->interaction : NULL;
    int status = run(&job, a->batch, (int)(a->threads > 64 ? 64 : a->threads), forward_thread, NULL, 0);
    free(buf);
    return status;
}

/* 0, or 1 when memory ran out. */
int afm_backward(const afm_args *a) {
    const int64_t B = a->batch, k = a->k, t = a->t;
    int n_threads = (int)(a->threads > 64 ? 64 : a->threads < 1 ? 1 : a->threads);
    const int64_t kp = round_up(k, VB), tp = round_up(t, PAD), acc_size = tp * kp + 2 * tp;
    float *buf = padded(a->W, a->bias, a->h, NULL, t, k, tp, kp);
    double *acc = calloc((size_t)(n_threads * acc_size), sizeof(double));
    if (buf == NULL || acc == NULL) {
        free(buf);
        free(acc);
        return 1;
    }
    Job job = {0};
    prepare(&job, buf, a->fields, k, t);
    job.e = a->e, job.keep = a->keep, job.attention = a->attention, job.grad_pooled = a->grad_pooled;
    job.grad_score = a->grad_score, job.grad_attention = a->grad_attention, job.grad_e = a->grad_e;
    int status = run(&job, B, n_threads, backward_thread, acc, acc_size);
    for (int n = 1; n < n_threads; n++) /* a fixed order: the same bits for the same thread count */
        for (int64_t q = 0; q < acc_size; q++) acc[q] += acc[n * acc_size + q];
    for (int64_t q = 0; q < t; q++) {
        for (int64_t c = 0; c < k; c++) a->grad_W[q * k + c] = (float)acc[q * kp + c];
        a->grad_b[q] = (float)acc[tp * kp + q];
        a->grad_h[q] = (float)acc[tp * kp + tp + q];
    }
    free(buf);
    free(acc);
    return status;
}

/* What afm/_bridge.py checks before it trusts a library: the interface version, the struct's size
 * (the same layout on both sides), the source it was built from; and what the benchmark reports. */
int afm_abi(void) { return AFM_ABI; }
int64_t afm_args_size(void) { return (int64_t)sizeof(afm_args); }
const char *afm_source_id(void) { return AFM_SOURCE_ID; }
int afm_vector_width(void) { return VL; }
int afm_pair_block(void) { return PB; }
int afm_vectors_across(void) { return QB; }
int afm_openmp(void) {
#ifdef AFM_OPENMP
    return 1;
#else
    return 0;
#endif
}

/* A forward and a backward pass on a small fixed input, checked for finite output and attention
 * that sums to 1 per row: afm/native.py runs it in a child process right after a build, so flags
 * the CPU cannot run (an illegal instruction) reject the build instead of killing a process.
 * 0 when it passes. */
int afm_probe(void) {
    enum { B = 5, F = 6, K = 19, T = 11, P = F * (F - 1) / 2 };
    float e[B * F * K], W[T * K], bias[T], h[T], keep[B * P];
    float pooled[B * K], score[B * P], attention[B * P], interaction[B * P], proj[K];
    float grad_e[B * F * K], grad_W[T * K], grad_b[T], grad_h[T];
    for (int i = 0; i < B * F * K; i++) e[i] = (float)((i * 37) % 23) / 23.0f - 0.5f;
    for (int i = 0; i < T * K; i++) W[i] = (float)((i * 11) % 17) / 17.0f - 0.5f;
    for (int i = 0; i < T; i++) bias[i] = 0.1f * (float)(i % 3), h[i] = (float)(i % 5) - 2.0f;
    for (int i = 0; i < K; i++) proj[i] = 1.0f;
    for (int i = 0; i < B * P; i++) keep[i] = (i % 4) ? 1.25f : 0.0f;
    afm_args a = {.batch = B, .fields = F, .k = K, .t = T, .threads = 2, .e = e, .W = W, .bias = bias, .h = h};
    a.keep = keep, a.proj = proj, a.pooled = pooled, a.score = score, a.attention_out = attention;
    a.interaction = interaction;
    if (afm_forward(&a)) return 2;
    a.attention = attention, a.grad_pooled = pooled, a.grad_score = score, a.grad_attention = NULL;
    a.grad_e = grad_e, a.grad_W = grad_W, a.grad_b = grad_b, a.grad_h = grad_h;
    if (afm_backward(&a)) return 3;
    for (int r = 0; r < B; r++) {
        double sum = 0.0;
        for (int p = 0; p < P; p++) sum += attention[r * P + p];
        if (!(fabs(sum - 1.0) < 1e-4)) return 4;
    }
    double total = 0.0;
    for (int i = 0; i < B * F * K; i++) total += grad_e[i];
    for (int i = 0; i < T * K; i++) total += grad_W[i];
    return isfinite(total) ? 0 : 5;
}
