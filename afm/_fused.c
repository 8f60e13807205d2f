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
    float *U, *Z, *dZ, *gU, *w, *gp, *rW, *rb, *rh;
} Scratch;

static float *scratch(Scratch *S, int64_t P, int64_t kp, int64_t tp) {
    const int64_t Pp = round_up(P, PB);
    float *all = calloc((size_t)(Pp * kp + 2 * Pp * tp + Pp * kp + Pp + kp + tp * kp + 2 * tp), sizeof(float));
    if (all == NULL) return NULL;
    S->U = all, S->Z = S->U + Pp * kp, S->dZ = S->Z + Pp * tp, S->gU = S->dZ + Pp * tp, S->w = S->gU + Pp * kp;
    S->gp = S->w + Pp, S->rW = S->gp + kp, S->rb = S->rW + tp * kp, S->rh = S->rb + tp;
    return all;
}

static void forward_rows(Job *J) {
    const int64_t F = J->F, k = J->k, kp = J->kp, tp = J->tp, P = F * (F - 1) / 2, Pp = round_up(P, PB);
    Scratch S;
    float *all = scratch(&S, P, kp, tp);
    if (all == NULL) {
        J->status = 1;
        return;
    }
    for (int64_t r = J->begin; r < J->end; r++) {
        const float *er = J->e + r * F * k;
        float *score = J->score + r * P, *att = J->attention_out + r * P, *out = J->pooled + r * k;
        pair_vectors(er, F, k, kp, S.U);
        hidden(S.U, Pp, k, kp, J->Wt, J->bias, tp, S.Z);
        for (int64_t p = 0; p < P; p++) { /* a'_p = h . ReLU(z_p) */
            v16 s = {0};
            for (int64_t q0 = 0; q0 < tp; q0 += VL) s += load(J->h + q0) * relu(load(S.Z + p * tp + q0));
            score[p] = hsum(s);
        }
        if (J->interaction) /* s_ij = p . u_ij, the pair's term before attention (explanations) */
            for (int64_t p = 0; p < P; p++) {
                v16 s = {0};
                for (int64_t c0 = 0; c0 < kp; c0 += VL) s += load(J->proj + c0) * load(S.U + p * kp + c0);
                J->interaction[r * P + p] = hsum(s);
            }
        /* softmax over the row's pairs, as torch.softmax: exp(s - max) / sum */
        float m = score[0], total = 0.0f;
        for (int64_t p = 1; p < P; p++) m = score[p] > m ? score[p] : m;
        int64_t p = 0;
        for (; p + VL <= P; p += VL) store(att + p, vexp(load(score + p) - m));
        for (; p < P; p++) att[p] = expf(score[p] - m);
        for (p = 0; p < P; p++) total += att[p];
        const float inverse = 1.0f / total;
#pragma omp simd
        for (int64_t p = 0; p < P; p++) att[p] *= inverse;
        /* pooled = sum_p keep_p a_p u_p */
        for (int64_t c0 = 0; c0 < kp; c0 += VL) {
            v16 s = {0};
            for (int64_t p = 0; p < P; p++)
                s += (J->keep ? att[p] * J->keep[r * P + p] : att[p]) * load(S.U + p * kp + c0);
            if (c0 + VL <= k)
                store(out + c0, s);
            else
                for (int64_t c = c0; c < k; c++) out[c] = s[c - c0];
        }
    }
    free(all);
}

static void backward_rows(Job *J) {
    const int64_t F = J->F, k = J->k, kp = J->kp, tp = J->tp, P = F * (F - 1) / 2, Pp = round_up(P, PB);
    Scratch S;
    float *all = scratch(&S, P, kp, tp);
    if (all == NULL) {
        J->status = 1;
        return;
    }
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
        for (int64_t p = 0; p < P; p++) {
            v16 s = {0};
            for (int64_t c0 = 0; c0 < kp; c0 += VL) s += load(S.U + p * kp + c0) * load(S.gp + c0);
            float g = hsum(s);
            if (keep) g *= keep[p];
            if (J->grad_attention) g += J->grad_attention[r * P + p];
            S.dZ[p * tp] = g; /* parked in dZ's first column until dot is known */
            dot += a[p] * g;
        }
        memset(S.rW, 0, sizeof(float) * (size_t)(tp * kp + 2 * tp));
        for (int64_t p = 0; p < P; p++) {
            float gs = a[p] * (S.dZ[p * tp] - dot);
            if (J->grad_score) gs += J->grad_score[r * P + p];
            S.w[p] = keep ? a[p] * keep[p] : a[p]; /* the pair's weight in pooled */
            for (int64_t q0 = 0; q0 < tp; q0 += VL) {
                const v16 z = load(S.Z + p * tp + q0);
                const v16 dz = (v16)((v16i)(gs * load(J->h + q0)) & positive_or_nan(z)); /* through the ReLU */
                store(S.dZ + p * tp + q0, dz);
                store(S.rb + q0, load(S.rb + q0) + dz);
                store(S.rh + q0, load(S.rh + q0) + gs * relu(z));
            }
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
        /* d e_i += d u_ij * e_j, d e_j += d u_ij * e_i */
        memset(ge, 0, sizeof(float) * (size_t)(F * k));
        int64_t p = 0;
        for (int64_t i = 0; i < F - 1; i++)
            for (int64_t j = i + 1; j < F; j++, p++) {
                const float *ei = er + i * k, *ej = er + j * k, *gu = S.gU + p * kp;
                float *gei = ge + i * k, *gej = ge + j * k;
#pragma omp simd
                for (int64_t c = 0; c < k; c++) {
                    gei[c] += gu[c] * ej[c];
                    gej[c] += gu[c] * ei[c];
                }
            }
#pragma omp simd
        for (int64_t q = 0; q < tp * kp; q++) aW[q] += S.rW[q];
        for (int64_t q = 0; q < tp; q++) {
            ab[q] += S.rb[q];
            ah[q] += S.rh[q];
        }
    }
    free(all);
}

static void *forward_thread(void *job) {
    forward_rows((Job *)job);
    return NULL;
}

static void *backward_thread(void *job) {
    backward_rows((Job *)job);
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
