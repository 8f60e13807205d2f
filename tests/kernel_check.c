/* The fused kernel against a plain scalar reference in double, without Python: for a build that
 * cannot load into this Python (a cross build run under qemu-user, tests/test_native.py) or a quick
 * check of any flags. Build and run from the repository root:
 *
 *     cc -O2 -std=c11 -pthread tests/kernel_check.c -o /tmp/kernel_check -lm && /tmp/kernel_check
 *
 * (add the flags to test, e.g. -march=x86-64-v3, or -DAFM_VL=8). Prints one line per case and the
 * vector width; exits 0 when every output and gradient is within 2e-5 of the reference's largest
 * magnitude. */
#include "../afm/_fused.c"

#include <stdio.h>

static uint64_t state = 88172645463325252ull;
static float uniform(void) { /* xorshift64: the same inputs everywhere */
    state ^= state << 13, state ^= state >> 7, state ^= state << 17;
    return (float)((state >> 40) & 0xFFFFFF) / 16777216.0f * 2.0f - 1.0f;
}

static float *fill(int64_t n, float scale) {
    float *x = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    for (int64_t i = 0; i < n; i++) x[i] = uniform() * scale;
    return x;
}

/* The maths of model.attention_reference and its gradients, one sample at a time, in double. */
static void reference(int64_t B, int64_t F, int64_t k, int64_t t, const float *e, const float *W, const float *bias,
                      const float *h, const float *keep, const float *gp, const float *gs, const float *ga,
                      double *pooled, double *score, double *att, double *ge, double *gW, double *gb, double *gh) {
    const int64_t P = F * (F - 1) / 2;
    double *u = calloc((size_t)(P * k), sizeof(double)), *z = calloc((size_t)(P * t), sizeof(double));
    double *ds = calloc((size_t)P, sizeof(double)), *du = calloc((size_t)k, sizeof(double));
    for (int64_t r = 0; r < B; r++) {
        const float *er = e + r * F * k;
        int64_t p = 0;
        for (int64_t i = 0; i < F - 1; i++)
            for (int64_t j = i + 1; j < F; j++, p++)
                for (int64_t c = 0; c < k; c++) u[p * k + c] = (double)er[i * k + c] * er[j * k + c];
        double top = -INFINITY;
        for (p = 0; p < P; p++) {
            double s = 0.0;
            for (int64_t q = 0; q < t; q++) {
                double zq = bias[q];
                for (int64_t c = 0; c < k; c++) zq += (double)W[q * k + c] * u[p * k + c];
                z[p * t + q] = zq;
                s += h[q] * (zq > 0 ? zq : 0.0);
            }
            score[r * P + p] = s;
            top = s > top ? s : top;
        }
        double sum = 0.0;
        for (p = 0; p < P; p++) sum += att[r * P + p] = exp(score[r * P + p] - top);
        for (p = 0; p < P; p++) att[r * P + p] /= sum;
        for (int64_t c = 0; c < k; c++) {
            double s = 0.0;
            for (p = 0; p < P; p++) s += att[r * P + p] * (keep ? keep[r * P + p] : 1.0) * u[p * k + c];
            pooled[r * k + c] = s;
        }
        /* backward */
        double dot = 0.0;
        for (p = 0; p < P; p++) {
            double dw = 0.0;
            for (int64_t c = 0; c < k; c++) dw += gp[r * k + c] * u[p * k + c];
            ds[p] = dw * (keep ? keep[r * P + p] : 1.0) + ga[r * P + p]; /* d a_p */
            dot += att[r * P + p] * ds[p];
        }
        for (p = 0; p < P; p++) ds[p] = att[r * P + p] * (ds[p] - dot) + gs[r * P + p]; /* d a'_p */
        p = 0;
        for (int64_t i = 0; i < F - 1; i++)
            for (int64_t j = i + 1; j < F; j++, p++) {
                const double w = att[r * P + p] * (keep ? keep[r * P + p] : 1.0);
                for (int64_t c = 0; c < k; c++) du[c] = w * gp[r * k + c];
                for (int64_t q = 0; q < t; q++) {
                    const double zq = z[p * t + q], dz = zq > 0 ? ds[p] * h[q] : 0.0;
                    gh[q] += ds[p] * (zq > 0 ? zq : 0.0);
                    gb[q] += dz;
                    for (int64_t c = 0; c < k; c++) {
                        gW[q * k + c] += dz * u[p * k + c];
                        du[c] += dz * W[q * k + c];
                    }
                }
                for (int64_t c = 0; c < k; c++) {
                    ge[(r * F + i) * k + c] += du[c] * er[j * k + c];
                    ge[(r * F + j) * k + c] += du[c] * er[i * k + c];
                }
            }
    }
    free(u), free(z), free(ds), free(du);
}

static double worst(const float *ours, const double *ref, int64_t n) { /* max error / max magnitude */
    double err = 0.0, scale = 1e-12;
    for (int64_t i = 0; i < n; i++) {
        const double d = fabs(ours[i] - ref[i]);
        err = d > err || d != d ? d : err;
        scale = fabs(ref[i]) > scale ? fabs(ref[i]) : scale;
    }
    return err / scale;
}

static int check(int64_t B, int64_t F, int64_t k, int64_t t, int masked, int64_t threads) {
    const int64_t P = F * (F - 1) / 2;
    float *e = fill(B * F * k, 0.7f), *W = fill(t * k, 1.0f), *bias = fill(t, 1.0f), *h = fill(t, 1.0f);
    float *gp = fill(B * k, 1.0f), *gs = fill(B * P, 1.0f), *ga = fill(B * P, 1.0f), *keep = NULL;
    if (masked) {
        keep = fill(B * P, 1.0f);
        for (int64_t i = 0; i < B * P; i++) keep[i] = keep[i] > -0.4f ? 1.0f / 0.7f : 0.0f;
    }
    float *pooled = fill(B * k, 0), *score = fill(B * P, 0), *att = fill(B * P, 0), *ge = fill(B * F * k, 0);
    float *gW = fill(t * k, 0), *gb = fill(t, 0), *gh = fill(t, 0);
    afm_args a = {.batch = B, .fields = F, .k = k, .t = t, .threads = threads, .e = e, .W = W, .bias = bias, .h = h};
    a.keep = keep, a.pooled = pooled, a.score = score, a.attention_out = att;
    int status = afm_forward(&a);
    a.attention = att, a.grad_pooled = gp, a.grad_score = gs, a.grad_attention = ga;
    a.grad_e = ge, a.grad_W = gW, a.grad_b = gb, a.grad_h = gh;
    status |= afm_backward(&a);
    double *r[7];
    const int64_t sizes[7] = {B * k, B * P, B * P, B * F * k, t * k, t, t};
    for (int i = 0; i < 7; i++) r[i] = calloc((size_t)sizes[i], sizeof(double));
    reference(B, F, k, t, e, W, bias, h, keep, gp, gs, ga, r[0], r[1], r[2], r[3], r[4], r[5], r[6]);
    const float *ours[7] = {pooled, score, att, ge, gW, gb, gh};
    const char *names[7] = {"pooled", "score", "attention", "grad e", "grad W", "grad b", "grad h"};
    int bad = status != 0;
    printf("B=%lld F=%lld k=%lld t=%lld mask=%d threads=%lld:", (long long)B, (long long)F, (long long)k,
           (long long)t, masked, (long long)threads);
    for (int i = 0; i < 7; i++) {
        const double w = worst(ours[i], r[i], sizes[i]);
        if (!(w <= 2e-5)) bad = 1, printf(" %s off by %.3g;", names[i], w);
        free(r[i]);
    }
    printf(bad ? " FAILED\n" : " ok\n");
    free(e), free(W), free(bias), free(h), free(gp), free(gs), free(ga), free(keep);
    free(pooled), free(score), free(att), free(ge), free(gW), free(gb), free(gh);
    return bad;
}

int main(void) {
    int bad = afm_probe() != 0;
    const int64_t cases[][6] = {{37, 10, 16, 16, 0, 2}, {64, 5, 7, 3, 1, 3}, {9, 2, 1, 1, 1, 1},
                                {17, 39, 33, 20, 1, 2}, {5, 12, 64, 16, 0, 1}, {3, 4, 8, 8, 1, 8}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        bad |= check(cases[i][0], cases[i][1], cases[i][2], cases[i][3], (int)cases[i][4], cases[i][5]);
    printf("vector width %d, block %d pairs x %d vectors: %s\n", afm_vector_width(), afm_pair_block(),
           afm_vectors_across(), bad ? "FAILED" : "all ok");
    return bad;
}
