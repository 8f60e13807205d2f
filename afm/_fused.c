/* AFM's pairwise-interaction and attention-pooling layers, fused per sample, forward and backward.
 *
 * Plain C, no Python or torch headers: afm/native.py compiles this file once per machine (about
 * a second) and calls it through ctypes on float32 tensors' memory. Every sample's pair vectors
 * u_ij = e_i * e_j, the attention network's hidden layer and its scores stay in cache: nothing of
 * size [B, P, k] or [B, P, t] is ever written to memory, which is what the unfused version spends
 * its time on. The backward pass recomputes u_ij and W u_ij + b from e (cheap) rather than
 * storing them.
 *
 * Layouts (row-major, contiguous): e [B, F, k]; W [t, k]; b, h [t]; keep, score, attention [B, P];
 * pooled [B, k]; p [k] and interaction [B, P] (optional). Pairs in torch.triu_indices order: (0,1), (0,2), ..., (0,F-1), (1,2), ...
 *
 * Threads: rows are split into one contiguous block per thread (see run()). The parameter gradients are
 * summed per sample in float, then per thread in double, then over the threads in a fixed order,
 * so a given thread count always gives the same bits, and different counts agree to float
 * rounding.
 */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* GCC/Clang vector extensions: 16 floats (one AVX-512 register, two AVX2 ones, four SSE ones). */
#define VL 16
#define PB 8 /* pairs (or rows of dW) per register block */
typedef float v16 __attribute__((vector_size(64), aligned(4)));
typedef int32_t v16i __attribute__((vector_size(64), aligned(4)));

static inline v16 load(const float *p) { return *(const v16 *)p; }
static inline void store(float *p, v16 v) { *(v16 *)p = v; }
static inline v16 splat(float x) { return (v16){0} + x; }
/* torch's ReLU: max(z, 0), but NaN stays NaN (as threshold_backward lets NaN's gradient through) */
static inline v16i positive_or_nan(v16 z) { return (z > 0.0f) | (z != z); }
static inline v16 relu(v16 z) { return (v16)((v16i)z & positive_or_nan(z)); }
typedef float v8 __attribute__((vector_size(32), aligned(4)));
typedef float v4 __attribute__((vector_size(16), aligned(4)));
static inline float hsum(v16 v) { /* a tree of halves: a few vector adds, not 16 scalar ones */
    v8 lo, hi;
    memcpy(&lo, &v, sizeof lo);
    memcpy(&hi, (const char *)&v + sizeof lo, sizeof hi);
    lo += hi;
    v4 a, b;
    memcpy(&a, &lo, sizeof a);
    memcpy(&b, (const char *)&lo + sizeof a, sizeof b);
    a += b;
    return (a[0] + a[2]) + (a[1] + a[3]);
}
/* exp(x) for x <= 0 (softmax's x - max), 16 at a time: Cody-Waite reduction x = n ln2 + r, the
 * Cephes polynomial for exp(r) (about 1 ulp), and 2^n put into the exponent bits; exp(x) = 0
 * below -87 (where float's exp leaves its normal range; those weights are < 1e-37 of the largest). */
static inline v16 vexp(v16 x) {
    const v16i tiny = x < -87.0f;
    x = (v16)(((v16i)x & ~tiny) | ((v16i)splat(-87.0f) & tiny));
    const v16 shifted = x * 1.44269504088896341f + 12582912.0f; /* 1.5 * 2^23: rounds to nearest */
    const v16i n = (v16i)shifted - 0x4B400000;
    const v16 nf = shifted - 12582912.0f;
    const v16 r = x - nf * 0.693359375f + nf * 2.12194440e-4f;
    v16 p = splat(1.9875691500e-4f);
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    const v16i nan = x != x; /* NaN in, NaN out: a diverged model must not look finite */
    const v16i bits = ((v16i)p + (n << 23)) & ~tiny;
    return (v16)((bits & ~nan) | ((v16i)x & nan));
}

/* sums[m] = the sum of v[m]'s lanes, for 16 vectors at once: four rounds of "shuffle halves
 * together and add" (64 shuffles and adds for 16 sums, instead of 16 reduction chains). */
#if defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 12)
#define SHUFFLE __builtin_shufflevector
static void hsum16(v16 v[VL], float sums[VL]) {
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
}
#else /* compilers without __builtin_shufflevector: one reduction per vector */
static void hsum16(v16 v[VL], float sums[VL]) {
    for (int m = 0; m < VL; m++) sums[m] = hsum(v[m]);
}
#endif

/* out[p] = y . f(X[p]) for the rows p of X [rows, stride] (rows a multiple of 16), f = ReLU or
 * identity, over the first `width` columns (a multiple of 16; the padding of y is zero). */
static void row_dots(const float *X, int64_t rows, int64_t stride, int64_t width, const float *y, int with_relu,
                     float *out) {
    for (int64_t p0 = 0; p0 < rows; p0 += VL) {
        v16 v[VL];
        for (int m = 0; m < VL; m++) {
            const float *x = X + (p0 + m) * stride;
            v16 s = {0};
            for (int64_t c0 = 0; c0 < width; c0 += VL) {
                const v16 xc = load(x + c0);
                s += load(y + c0) * (with_relu ? relu(xc) : xc);
            }
            v[m] = s;
        }
        hsum16(v, out + p0);
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

/* Z [Pp, tp] = U W^T + b, PB pairs x VL hidden units at a time in registers. */
static void hidden(const float *U, int64_t Pp, int64_t k, int64_t kp, const float *Wt, const float *bias, int64_t tp,
                   float *Z) {
    for (int64_t p0 = 0; p0 < Pp; p0 += PB)
        for (int64_t q0 = 0; q0 < tp; q0 += VL) {
            v16 a[PB];
            const float *u = U + p0 * kp;
#pragma GCC unroll 8
            for (int m = 0; m < PB; m++) a[m] = load(bias + q0);
            for (int64_t c = 0; c < k; c++) {
                const v16 w = load(Wt + c * tp + q0);
#pragma GCC unroll 8
                for (int m = 0; m < PB; m++) a[m] += u[m * kp + c] * w;
            }
#pragma GCC unroll 8
            for (int m = 0; m < PB; m++) store(Z + (p0 + m) * tp + q0, a[m]);
        }
}

typedef struct {
    float *U, *Z, *dZ, *gU, *w, *gp, *rW, *rb, *rh, *s, *a, *E, *gE;
} Scratch;

/* One thread's buffers for one row at a time: pairs padded to Pp (a multiple of 16) with zero
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
    const int64_t F = J->F, k = J->k, kp = J->kp, tp = J->tp, P = F * (F - 1) / 2, Pp = round_up(P, VL);
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
        v16 top = load(S.s);
        for (int64_t p0 = VL; p0 < Pp; p0 += VL) {
            const v16 x = load(S.s + p0);
            const v16i higher = x > top;
            top = (v16)(((v16i)x & higher) | ((v16i)top & ~higher));
        }
        float m = top[0];
        for (int l = 1; l < VL; l++) m = top[l] > m ? top[l] : m;
        v16 sum = {0};
        for (int64_t p0 = 0; p0 < Pp; p0 += VL) {
            const v16 x = vexp(load(S.s + p0) - m);
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
            v16 s4[4] = {{0}}; /* four independent sums: no single chain of P dependent adds */
            for (int64_t p = 0; p < Pp; p += 4)
#pragma GCC unroll 4
                for (int m = 0; m < 4; m++) s4[m] += S.w[p + m] * load(S.U + (p + m) * kp + c0);
            const v16 s = (s4[0] + s4[1]) + (s4[2] + s4[3]);
            if (c0 + VL <= k)
                store(out + c0, s);
            else
                for (int64_t c = c0; c < k; c++) out[c] = s[c - c0];
        }
    }
}

static void backward_rows(Job *J, Scratch S) {
    const int64_t F = J->F, k = J->k, kp = J->kp, tp = J->tp, P = F * (F - 1) / 2, Pp = round_up(P, VL);
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
            const v16 h = load(J->h + q0);
            v16 db[2] = {{0}}, dh[2] = {{0}}; /* two chains each, alternating pairs */
            for (int64_t p = 0; p < P; p++) {
                const v16 z = load(S.Z + p * tp + q0);
                const v16 dz = (v16)((v16i)(S.a[p] * h) & positive_or_nan(z));
                store(S.dZ + p * tp + q0, dz);
                db[p & 1] += dz;
                dh[p & 1] += S.a[p] * relu(z);
            }
            store(S.rb + q0, db[0] + db[1]);
            store(S.rh + q0, dh[0] + dh[1]);
        }
        /* gU [Pp, kp] = w_p grad_pooled + dZ W (d u_p), PB pairs x VL columns at a time */
        for (int64_t p0 = 0; p0 < Pp; p0 += PB)
            for (int64_t c0 = 0; c0 < kp; c0 += VL) {
                v16 acc[PB];
                const v16 g = load(S.gp + c0);
#pragma GCC unroll 8
                for (int m = 0; m < PB; m++) acc[m] = S.w[p0 + m] * g;
                for (int64_t q = 0; q < tp; q++) {
                    const v16 w = load(J->Wp + q * kp + c0);
#pragma GCC unroll 8
                    for (int m = 0; m < PB; m++) acc[m] += S.dZ[(p0 + m) * tp + q] * w;
                }
#pragma GCC unroll 8
                for (int m = 0; m < PB; m++) store(S.gU + (p0 + m) * kp + c0, acc[m]);
            }
        /* rW [tp, kp] = dZ^T U (this row's d W), PB rows x VL columns at a time */
        for (int64_t q0 = 0; q0 < tp; q0 += PB)
            for (int64_t c0 = 0; c0 < kp; c0 += VL) {
                v16 acc[PB] = {{0}};
                for (int64_t p = 0; p < P; p++) {
                    const v16 u = load(S.U + p * kp + c0);
                    const float *dz = S.dZ + p * tp + q0;
#pragma GCC unroll 8
                    for (int m = 0; m < PB; m++) acc[m] += dz[m] * u;
                }
#pragma GCC unroll 8
                for (int m = 0; m < PB; m++) store(S.rW + (q0 + m) * kp + c0, acc[m]);
            }
        /* d e_i += d u_ij * e_j, d e_j += d u_ij * e_i: e_i's sum in a register over its j */
        for (int64_t f = 0; f < F; f++) memcpy(S.E + f * kp, er + f * k, sizeof(float) * (size_t)k);
        memset(S.gE, 0, sizeof(float) * (size_t)(F * kp));
        for (int64_t c0 = 0; c0 < kp; c0 += VL) {
            int64_t p = 0;
            for (int64_t i = 0; i < F - 1; i++) {
                const v16 ei = load(S.E + i * kp + c0);
                v16 gi = load(S.gE + i * kp + c0);
                for (int64_t j = i + 1; j < F; j++, p++) {
                    const v16 gu = load(S.gU + p * kp + c0);
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
    float *all = scratch(&S, J->F, round_up(P, VL), J->kp, J->tp);
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
    job->F = F, job->k = k, job->t = t, job->kp = round_up(k, VL), job->tp = round_up(t, VL);
    job->Wt = buf, job->Wp = buf + k * job->tp, job->bias = job->Wp + job->tp * job->kp, job->h = job->bias + job->tp;
    job->proj = job->h + job->tp;
}

int afm_forward(const float *e, int64_t B, int64_t F, int64_t k, int64_t t, const float *W, const float *bias,
                const float *h, const float *keep, const float *proj, float *pooled, float *score, float *attention,
                float *interaction, int n_threads) {
    float *buf = padded(W, bias, h, proj, t, k, round_up(t, VL), round_up(k, VL));
    if (buf == NULL) return 1;
    Job job = {0};
    prepare(&job, buf, F, k, t);
    job.e = e, job.keep = keep, job.pooled = pooled, job.score = score, job.attention_out = attention;
    job.interaction = proj ? interaction : NULL;
    int status = run(&job, B, n_threads, forward_thread, NULL, 0);
    free(buf);
    return status;
}

int afm_backward(const float *e, int64_t B, int64_t F, int64_t k, int64_t t, const float *W, const float *bias,
                 const float *h, const float *keep, const float *attention, const float *grad_pooled,
                 const float *grad_score, const float *grad_attention, float *grad_e, float *grad_W, float *grad_b,
                 float *grad_h, int n_threads) {
    if (n_threads < 1) n_threads = 1;
    if (n_threads > 64) n_threads = 64;
    const int64_t kp = round_up(k, VL), tp = round_up(t, VL), acc_size = tp * kp + 2 * tp;
    float *buf = padded(W, bias, h, NULL, t, k, tp, kp);
    double *acc = calloc((size_t)(n_threads * acc_size), sizeof(double));
    if (buf == NULL || acc == NULL) {
        free(buf);
        free(acc);
        return 1;
    }
    Job job = {0};
    prepare(&job, buf, F, k, t);
    job.e = e, job.keep = keep, job.attention = attention, job.grad_pooled = grad_pooled;
    job.grad_score = grad_score, job.grad_attention = grad_attention, job.grad_e = grad_e;
    int status = run(&job, B, n_threads, backward_thread, acc, acc_size);
    for (int n = 1; n < n_threads; n++) /* a fixed order: the same bits for the same thread count */
        for (int64_t q = 0; q < acc_size; q++) acc[q] += acc[n * acc_size + q];
    for (int64_t q = 0; q < t; q++) {
        for (int64_t c = 0; c < k; c++) grad_W[q * k + c] = (float)acc[q * kp + c];
        grad_b[q] = (float)acc[tp * kp + q];
        grad_h[q] = (float)acc[tp * kp + tp + q];
    }
    free(buf);
    free(acc);
    return status;
}
