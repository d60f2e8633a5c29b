// Golden files and a throughput baseline from llama.cpp's own C reference quantizers
// (quantize_row_*_ref / dequantize_row_* in ggml/src/ggml-quants.c; quantize_iq4_nl for IQ4_NL).
//
// Dev tool only: tests read the committed files in tests/fixtures/ggml/kq_* and never run this.
// Build and run it with scripts/dev/make_kquant_goldens.sh (goldens) or scripts/bench-quantize.sh
// (benchmark); both explain where the llama.cpp sources come from.
//
//   kquant_goldens goldens <out_dir>   write kq.in.f32.bin, kq_<TYPE>.packed.bin, kq_manifest.json
//   kquant_goldens bench <n_floats> <runs>   print "<TYPE>\t<MB/s>" per type (best of <runs>)
//   kquant_goldens imatrix <out_dir>   write kqi.qw.f32.bin and kqi_<TYPE>.packed.bin: the same
//       input as rows of 512 quantized by quantize_<type> with a seeded importance vector
//       (what llama-quantize calls with an imatrix entry)
//
// Everything is deterministic: inputs come from SplitMix64 with a fixed seed (Box-Muller for
// normals). The dequantized output is not stored as floats (the fixture budget is small); the
// manifest holds, per type and per 256-value block, the FNV-1a 64-bit hash of the little-endian
// f32 bytes of dequantize_row_*'s output, with every NaN replaced by 0x7fc00000 first.

#define GGML_COMMON_DECL_C
#include "ggml-common.h"
#include "ggml-quants.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

// ---- the four ggml.c symbols ggml-quants.c links against (only ggml_row_size is called, by the
// quantize_<type> entry points of the imatrix goldens)
void ggml_abort(const char * file, int line, const char * fmt, ...) {
    fprintf(stderr, "ggml_abort %s:%d\n", file, line);
    abort();
}
size_t ggml_row_size(enum ggml_type type, int64_t ne) {
    switch (type) {
    case GGML_TYPE_Q4_0: return ne / QK4_0 * sizeof(block_q4_0);
    case GGML_TYPE_Q4_1: return ne / QK4_1 * sizeof(block_q4_1);
    case GGML_TYPE_Q5_0: return ne / QK5_0 * sizeof(block_q5_0);
    case GGML_TYPE_Q5_1: return ne / QK5_1 * sizeof(block_q5_1);
    case GGML_TYPE_Q2_K: return ne / QK_K * sizeof(block_q2_K);
    case GGML_TYPE_Q3_K: return ne / QK_K * sizeof(block_q3_K);
    case GGML_TYPE_Q4_K: return ne / QK_K * sizeof(block_q4_K);
    case GGML_TYPE_Q5_K: return ne / QK_K * sizeof(block_q5_K);
    case GGML_TYPE_Q6_K: return ne / QK_K * sizeof(block_q6_K);
    default: abort();
    }
}
const char * ggml_type_name(enum ggml_type type) { (void) type; abort(); }
size_t ggml_type_size(enum ggml_type type) { (void) type; abort(); }

// ---- deterministic inputs
static uint64_t rng_state;
static uint64_t splitmix64(void) {
    uint64_t z = (rng_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
// Uniform in (0, 1).
static double unit(void) { return ((double) (splitmix64() >> 11) + 0.5) * 0x1.0p-53; }
static double normal(void) {
    double u1 = unit(), u2 = unit(); // explicit order (same as the Rust bench's generator)
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}
static double student_t3(void) {
    double z = normal(), c = 0;
    for (int i = 0; i < 3; ++i) { double g = normal(); c += g * g; }
    return z / sqrt(c / 3.0);
}

#define NB 20 // 256-value blocks in the golden input
static const char * labels[NB] = {
    "zeros",
    "const_pos_0.5",
    "const_neg_-3.25",
    "const_7e4",
    "tiny_1e-8",
    "tiny_1e-20_below_group_max_eps",
    "f16_subnormal_scales_1e-6",
    "huge_1e5",
    "overflow_7e4_offset_normal_x3e4",
    "overflow_1e7",
    "overflow_1e9",
    "ties_half_steps",
    "normal",
    "normal_x0.02",
    "outlier_50_at_77",
    "mixed_sign_pattern",
    "student_t3_x0.02",
    "positive_only_1_to_2",
    "sparse_subblocks",
    "subblock_scales_1e-3_to_1e3",
};

static void make_input(float * x) {
    rng_state = 20250611;
    for (int b = 0; b < NB; ++b) {
        float * y = x + 256 * b;
        for (int i = 0; i < 256; ++i) {
            double v = 0;
            switch (b) {
            case 0: v = 0; break;
            case 1: v = 0.5; break;
            case 2: v = -3.25; break;
            case 3: v = 7e4; break;
            case 4: v = 1e-8 * normal(); break;
            case 5: v = 1e-20 * normal(); break;
            case 6: v = 1e-6 * normal(); break;
            case 7: v = 1e5 * normal(); break;
            case 8: v = 7e4 + 3e4 * normal(); break;
            case 9: v = 1e7 * normal(); break;
            case 10: v = 1e9 * normal(); break;
            case 11: v = 0.5 * (double) ((i * 7) % 33 - 16); break; // multiples of 0.5: rounding ties
            case 12: v = normal(); break;
            case 13: v = 0.02 * normal(); break;
            case 14: v = i == 77 ? 50.0 : normal(); break;
            case 15: v = (i % 2 ? -1.0 : 1.0) * (1 + i % 7) * (i % 3 ? 0.25 : 1.0); break;
            case 16: v = 0.02 * student_t3(); break;
            case 17: v = 1.0 + unit(); break;
            case 18: v = ((i / 16) % 3 == 0) ? normal() : (i % 37 == 0 ? 1e-3 : 0.0); break;
            case 19: v = pow(10.0, (double) (i / 16) * 0.4 - 3.0) * normal(); break;
            }
            y[i] = (float) v;
        }
    }
}

// ---- the types
typedef void (*quantize_fn)(const float *, void *, int64_t);
typedef void (*dequantize_fn)(const void *, float *, int64_t);
struct qtype {
    const char * name;
    int block_values, block_bytes;
    quantize_fn quantize;
    dequantize_fn dequantize;
};
// IQ4_NL has no quantize_row_*_ref that llama-quantize uses: its files come from
// quantize_iq4_nl (ntry = 7), here without an importance matrix.
static void quantize_iq4_nl_no_imatrix(const float * x, void * y, int64_t k) {
    quantize_iq4_nl(x, y, 1, k, NULL);
}

#define T(name, qk, block, q, dq) { name, qk, (int) sizeof(block), (quantize_fn) q, (dequantize_fn) dq }
static const struct qtype types[] = {
    T("Q8_0", QK8_0, block_q8_0, quantize_row_q8_0_ref, dequantize_row_q8_0),
    T("Q4_0", QK4_0, block_q4_0, quantize_row_q4_0_ref, dequantize_row_q4_0),
    T("Q4_1", QK4_1, block_q4_1, quantize_row_q4_1_ref, dequantize_row_q4_1),
    T("Q5_0", QK5_0, block_q5_0, quantize_row_q5_0_ref, dequantize_row_q5_0),
    T("Q5_1", QK5_1, block_q5_1, quantize_row_q5_1_ref, dequantize_row_q5_1),
    T("Q2_K", QK_K, block_q2_K, quantize_row_q2_K_ref, dequantize_row_q2_K),
    T("Q3_K", QK_K, block_q3_K, quantize_row_q3_K_ref, dequantize_row_q3_K),
    T("Q4_K", QK_K, block_q4_K, quantize_row_q4_K_ref, dequantize_row_q4_K),
    T("Q5_K", QK_K, block_q5_K, quantize_row_q5_K_ref, dequantize_row_q5_K),
    T("Q6_K", QK_K, block_q6_K, quantize_row_q6_K_ref, dequantize_row_q6_K),
    T("IQ4_NL", QK4_NL, block_iq4_nl, quantize_iq4_nl_no_imatrix, dequantize_row_iq4_nl),
};
#define NTYPES (int) (sizeof(types) / sizeof(types[0]))

static uint64_t fnv1a_f32(const float * y, int n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (int i = 0; i < n; ++i) {
        uint32_t u;
        memcpy(&u, &y[i], 4);
        if (y[i] != y[i]) u = 0x7fc00000u;
        for (int k = 0; k < 4; ++k) { h ^= (u >> (8 * k)) & 0xff; h *= 0x100000001b3ull; }
    }
    return h;
}

static void write_file(const char * dir, const char * name, const void * data, size_t n) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE * f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n || fclose(f)) { perror(path); exit(1); }
}

static int goldens(const char * dir) {
    const int n = 256 * NB;
    float * x = malloc(n * sizeof(float));
    float * y = malloc(n * sizeof(float));
    make_input(x);
    write_file(dir, "kq.in.f32.bin", x, n * sizeof(float));

    char path[4096];
    snprintf(path, sizeof path, "%s/kq_manifest.json", dir);
    FILE * m = fopen(path, "w");
    if (!m) { perror(path); return 1; }
    fprintf(m, "{\n \"generator\": \"scripts/dev/kquant_goldens.c (scripts/dev/make_kquant_goldens.sh)\",\n");
    fprintf(m, " \"reference\": \"llama.cpp ggml-quants.c quantize_row_*_ref / dequantize_row_* (%s)\",\n", LLAMA_CPP_VERSION);
    fprintf(m, " \"input\": \"kq.in.f32.bin\",\n \"n_values\": %d,\n \"block_values\": 256,\n", n);
    fprintf(m, " \"deq_hash\": \"per 256-value block: FNV-1a 64 of the LE f32 bytes, NaN as 0x7fc00000\",\n");
    fprintf(m, " \"labels\": [");
    for (int b = 0; b < NB; ++b) fprintf(m, "%s\n  \"%s\"", b ? "," : "", labels[b]);
    fprintf(m, "\n ],\n \"types\": [");
    for (int t = 0; t < NTYPES; ++t) {
        const struct qtype * q = &types[t];
        size_t bytes = (size_t) n / q->block_values * q->block_bytes;
        void * packed = calloc(1, bytes);
        q->quantize(x, packed, n);
        q->dequantize(packed, y, n);
        char name[256];
        snprintf(name, sizeof name, "kq_%s.packed.bin", q->name);
        write_file(dir, name, packed, bytes);
        fprintf(m, "%s\n  {\n   \"type\": \"%s\",\n   \"packed\": \"%s\",\n   \"deq_hash\": [", t ? "," : "", q->name, name);
        for (int b = 0; b < NB; ++b) fprintf(m, "%s\"%016llx\"", b ? ", " : "", (unsigned long long) fnv1a_f32(y + 256 * b, 256));
        fprintf(m, "]\n  }");
        free(packed);
    }
    fprintf(m, "\n ]\n}\n");
    fclose(m);
    free(x);
    free(y);
    return 0;
}

// ---- benchmark: the same Gaussian data as crate/examples/bench_quantize.rs
// Thread CPU time, as the Rust bench: comparable on a shared machine.
static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static int bench(long n, int runs) {
    n -= n % 256;
    float * x = malloc(n * sizeof(float));
    rng_state = 42;
    for (long i = 0; i < n; ++i) x[i] = (float) normal();
    for (int t = 0; t < NTYPES; ++t) {
        const struct qtype * q = &types[t];
        void * packed = malloc((size_t) n / q->block_values * q->block_bytes);
        double best = 1e30;
        for (int r = 0; r < runs; ++r) {
            double t0 = now();
            q->quantize(x, packed, n);
            double dt = now() - t0;
            if (dt < best) best = dt;
        }
        printf("%s\t%.1f\n", q->name, n * 4.0 / 1e6 / best);
        fflush(stdout);
        free(packed);
    }
    free(x);
    return 0;
}

// ---- importance-weighted quantization (quantize_<type> with non-NULL quant_weights)
typedef size_t (*quantize_imatrix_fn)(const float *, void *, int64_t, int64_t, const float *);
struct itype {
    const char * name;
    int block_values, block_bytes;
    quantize_imatrix_fn quantize;
};
#define I(name, qk, block, q) { name, qk, (int) sizeof(block), q }
static const struct itype itypes[] = {
    I("Q4_0", QK4_0, block_q4_0, quantize_q4_0), I("Q4_1", QK4_1, block_q4_1, quantize_q4_1),
    I("Q5_0", QK5_0, block_q5_0, quantize_q5_0), I("Q5_1", QK5_1, block_q5_1, quantize_q5_1),
    I("Q2_K", QK_K, block_q2_K, quantize_q2_K),  I("Q3_K", QK_K, block_q3_K, quantize_q3_K),
    I("Q4_K", QK_K, block_q4_K, quantize_q4_K),  I("Q5_K", QK_K, block_q5_K, quantize_q5_K),
    I("Q6_K", QK_K, block_q6_K, quantize_q6_K),
};
#define IROW 512

static int imatrix_goldens(const char * dir) {
    const int n = 256 * NB, nrow = n / IROW;
    float * x = malloc(n * sizeof(float));
    float qw[IROW];
    make_input(x);
    // Positive importances over four orders of magnitude, a few exact zeros (columns no
    // calibration row touched).
    rng_state = 20261207;
    for (int j = 0; j < IROW; ++j) qw[j] = j % 61 == 5 ? 0.0f : (float) exp(2.0 * normal());
    write_file(dir, "kqi.qw.f32.bin", qw, sizeof qw);
    for (int t = 0; t < (int) (sizeof(itypes) / sizeof(itypes[0])); ++t) {
        const struct itype * q = &itypes[t];
        size_t bytes = (size_t) n / q->block_values * q->block_bytes;
        void * packed = calloc(1, bytes);
        q->quantize(x, packed, nrow, IROW, qw);
        char name[256];
        snprintf(name, sizeof name, "kqi_%s.packed.bin", q->name);
        write_file(dir, name, packed, bytes);
        free(packed);
    }
    free(x);
    return 0;
}

int main(int argc, char ** argv) {
    if (argc == 3 && !strcmp(argv[1], "imatrix")) return imatrix_goldens(argv[2]);
    if (argc == 3 && !strcmp(argv[1], "goldens")) return goldens(argv[2]);
    if (argc == 4 && !strcmp(argv[1], "bench")) return bench(atol(argv[2]), atoi(argv[3]));
    fprintf(stderr, "usage: %s goldens <out_dir> | imatrix <out_dir> | bench <n_floats> <runs>\n", argv[0]);
    return 2;
}
