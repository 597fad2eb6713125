/* dist.c: the data-parallel processes (dist.h): Open MPI when built with HS_HAVE_MPI and
 * started by mpirun, else one process alone. The only file of halfs that calls MPI.
 */
#include "train/dist.h"

#include <limits.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef HS_HAVE_MPI
#include <mpi.h>
#endif

static int g_rank = 0, g_size = 1;

int hs_dist_rank(void) { return g_rank; }
int hs_dist_size(void) { return g_size; }

/* The job size mpirun announced in the environment, 0 when not started by mpirun. */
static int launched_size(void) {
    const char *s = getenv("OMPI_COMM_WORLD_SIZE");
    if (s && *s) return atoi(s);
    if (getenv("PMIX_RANK")) return -1; // some launcher's job, size unknown here
    return 0;
}

#ifdef HS_HAVE_MPI

int hs_dist_with_mpi(void) { return 1; }

static int g_joined = 0; // MPI_Init done, MPI_Finalize not yet

static hs_status mpi_fail(int err, const char *what) {
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(err, msg, &len) != MPI_SUCCESS) snprintf(msg, sizeof msg, "code %d", err);
    return hs_fail(HS_ERR_IO, "MPI %s failed on rank %d: %s", what, g_rank, msg);
}
#define MPI_CHECK(call, what) \
    do { \
        int e_ = (call); \
        if (e_ != MPI_SUCCESS) return mpi_fail(e_, what); \
    } while (0)

hs_status hs_dist_init(void) {
    if (g_joined || launched_size() == 0) return HS_OK;
    int provided = 0;
    // FUNNELED: only the main thread calls MPI (OpenMP threads never do)
    if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return hs_fail(HS_ERR_IO, "MPI_Init failed");
    g_joined = 1;
    // errors come back as codes (then hs_fail), so the tool can print one line and abort
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    return HS_OK;
}

void hs_dist_finalize(void) {
    if (!g_joined) return;
    MPI_Finalize();
    g_joined = 0;
    g_rank = 0;
    g_size = 1;
}

void hs_dist_abort(int code) {
    if (g_joined && g_size > 1) MPI_Abort(MPI_COMM_WORLD, code);
}

int hs_dist_max_int(int v) {
    if (g_size == 1) return v;
    int out = v;
    if (MPI_Allreduce(&v, &out, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD) != MPI_SUCCESS) return v ? v : 2;
    return out;
}

hs_status hs_dist_check_same(uint64_t hash, const char *what) {
    if (g_size == 1) return HS_OK;
    unsigned long long *all = malloc(sizeof *all * (size_t)g_size);
    if (!all) return hs_fail(HS_ERR_NOMEM, "out of memory");
    unsigned long long h = hash;
    int e = MPI_Allgather(&h, 1, MPI_UNSIGNED_LONG_LONG, all, 1, MPI_UNSIGNED_LONG_LONG,
                          MPI_COMM_WORLD);
    if (e != MPI_SUCCESS) {
        free(all);
        return mpi_fail(e, "Allgather");
    }
    int bad = -1;
    for (int r = 1; r < g_size && bad < 0; r++)
        if (all[r] != all[0]) bad = r;
    free(all);
    if (bad >= 0)
        return hs_fail(HS_ERR_INVALID_ARG,
                       "the ranks disagree on %s: rank %d's differs from rank 0's (every rank "
                       "must be started with the same options and files)", what, bad);
    return HS_OK;
}

hs_status hs_dist_allgather_f32(const float *mine, int n, float *all) {
    if (g_size == 1) {
        memmove(all, mine, sizeof(float) * (size_t)n);
        return HS_OK;
    }
    MPI_CHECK(MPI_Allgather(mine, n, MPI_FLOAT, all, n, MPI_FLOAT, MPI_COMM_WORLD), "Allgather");
    return HS_OK;
}

hs_status hs_dist_allgatherv_f32(float *buf, const int *counts, const int *displs) {
    if (g_size == 1) return HS_OK;
    MPI_CHECK(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, counts, displs, MPI_FLOAT,
                             MPI_COMM_WORLD), "Allgatherv");
    return HS_OK;
}

hs_status hs_dist_allgatherv_f64(double *buf, const int *counts, const int *displs) {
    if (g_size == 1) return HS_OK;
    MPI_CHECK(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, counts, displs, MPI_DOUBLE,
                             MPI_COMM_WORLD), "Allgatherv");
    return HS_OK;
}

hs_status hs_dist_gatherv_f32(const float *mine, float *all, const int *counts,
                              const int *displs) {
    if (g_size == 1) {
        memmove(all + displs[0], mine, sizeof(float) * (size_t)counts[0]);
        return HS_OK;
    }
    MPI_CHECK(MPI_Gatherv(mine, counts[g_rank], MPI_FLOAT, all, counts, displs, MPI_FLOAT, 0,
                          MPI_COMM_WORLD), "Gatherv");
    return HS_OK;
}

hs_status hs_dist_bcast_i32(int32_t *v, int n) {
    if (g_size == 1) return HS_OK;
    MPI_CHECK(MPI_Bcast(v, n, MPI_INT32_T, 0, MPI_COMM_WORLD), "Bcast");
    return HS_OK;
}

/* ------------------------------------------------------------------ gradient exchange */

/* One bucket in flight: g[b0, b1); this rank's part of it is g[s0, s1). */
typedef struct {
    float *g;
    int64_t b0, b1, s0, s1;
    int stage; // 0 reduce-scatter in flight, 1 all-gather in flight, 2 complete
    MPI_Request req;
    int *scount, *sdispl, *rcount, *rdispl; // (size) each, for the alltoallv / allgatherv
} bucket;

struct hs_dist_xchg {
    int64_t n;
    int64_t *lo;   // (size + 1) shard bounds
    int gather;
    int max_buckets, n_buckets;
    bucket *b;     // (max_buckets)
    int *ints;     // (max_buckets · 4 · size) the buckets' count/displacement arrays
    float *recv;   // (size · own shard) every rank's contribution to the own shard
    int next;      // the first bucket whose reduce-scatter has not been seen complete
    // Collectives must start in the same order on every rank: the reduce-scatters start in
    // bucket order on comm_rs (in hs_dist_xchg_start), the all-gathers in bucket order on
    // comm_ag (each once its own and every earlier bucket's reduce-scatter is complete), so
    // however the transfers interleave, each communicator sees one order everywhere.
    MPI_Comm comm_rs, comm_ag;
    double time;   // seconds inside start/finish since the last finish
    int64_t bytes; // bytes handed to MPI for other ranks since the last finish
};

hs_status hs_dist_xchg_create(int64_t n, const int64_t *lo, int max_buckets, int gather,
                              hs_dist_xchg **out) {
    *out = NULL;
    if (n < 0 || n > INT_MAX || max_buckets < 1 || lo[0] != 0 || lo[g_size] != n)
        return hs_fail(HS_ERR_INVALID_ARG, "gradient exchange: bad layout (%lld elements)",
                       (long long)n);
    for (int r = 0; r < g_size; r++)
        if (lo[r + 1] < lo[r])
            return hs_fail(HS_ERR_INVALID_ARG, "gradient exchange: shards out of order");
    hs_dist_xchg *x = calloc(1, sizeof *x);
    if (!x) return hs_fail(HS_ERR_NOMEM, "out of memory");
    x->n = n;
    x->gather = gather;
    x->max_buckets = max_buckets;
    x->lo = malloc(sizeof(int64_t) * (size_t)(g_size + 1));
    x->b = calloc((size_t)max_buckets, sizeof(bucket));
    x->ints = malloc(sizeof(int) * 4 * (size_t)g_size * (size_t)max_buckets);
    int64_t own = lo[g_rank + 1] - lo[g_rank];
    x->recv = malloc(sizeof(float) * (size_t)(own * g_size > 0 ? own * g_size : 1));
    if (!x->lo || !x->b || !x->ints || !x->recv) {
        hs_dist_xchg_free(x);
        return hs_fail(HS_ERR_NOMEM, "gradient exchange: out of memory");
    }
    memcpy(x->lo, lo, sizeof(int64_t) * (size_t)(g_size + 1));
    x->comm_rs = x->comm_ag = MPI_COMM_NULL;
    if (g_size > 1 && (MPI_Comm_dup(MPI_COMM_WORLD, &x->comm_rs) != MPI_SUCCESS ||
                       MPI_Comm_dup(MPI_COMM_WORLD, &x->comm_ag) != MPI_SUCCESS)) {
        hs_dist_xchg_free(x);
        return hs_fail(HS_ERR_IO, "gradient exchange: MPI_Comm_dup failed");
    }
    for (int k = 0; k < max_buckets; k++) {
        int *p = x->ints + (size_t)k * 4 * (size_t)g_size;
        x->b[k].scount = p;
        x->b[k].sdispl = p + g_size;
        x->b[k].rcount = p + 2 * g_size;
        x->b[k].rdispl = p + 3 * g_size;
    }
    *out = x;
    return HS_OK;
}

void hs_dist_xchg_free(hs_dist_xchg *x) {
    if (!x) return;
    if (x->comm_rs != MPI_COMM_NULL) MPI_Comm_free(&x->comm_rs);
    if (x->comm_ag != MPI_COMM_NULL) MPI_Comm_free(&x->comm_ag);
    free(x->lo);
    free(x->b);
    free(x->ints);
    free(x->recv);
    free(x);
}

static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }
static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* The reduce-scatter of bucket k is complete: sum the contributions in rank order into the own
 * part of g, then (gather) start its all-gather. */
static hs_status reduce_bucket(hs_dist_xchg *x, bucket *k) {
    int64_t c = k->s1 - k->s0, N = g_size;
    const float *r = x->recv + N * (k->s0 - x->lo[g_rank]);
    float *dst = k->g + k->s0;
#pragma omp parallel for schedule(static) if (c > 65536)
    for (int64_t i = 0; i < c; i++) {
        float s = r[i];
        for (int64_t q = 1; q < N; q++) s += r[q * c + i]; // left fold in rank order
        dst[i] = s;
    }
    if (!x->gather) {
        k->stage = 2;
        return HS_OK;
    }
    for (int q = 0; q < g_size; q++) {
        int64_t a = max64(k->b0, x->lo[q]), b = min64(k->b1, x->lo[q + 1]);
        k->rcount[q] = (int)(b > a ? b - a : 0);
        k->rdispl[q] = (int)(b > a ? a - k->b0 : 0);
    }
    x->bytes += (int64_t)sizeof(float) * c * (N - 1);
    MPI_CHECK(MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, k->g + k->b0, k->rcount,
                              k->rdispl, MPI_FLOAT, x->comm_ag, &k->req), "Iallgatherv");
    k->stage = 1;
    return HS_OK;
}

/* Move the buckets on in order: each one whose reduce-scatter is complete (wait: block until
 * it is) gets its sums and its all-gather, in bucket order; with wait, then every all-gather
 * completes. */
static hs_status advance(hs_dist_xchg *x, int wait) {
    while (x->next < x->n_buckets) {
        bucket *k = &x->b[x->next];
        int done = 0;
        if (wait) {
            MPI_CHECK(MPI_Wait(&k->req, MPI_STATUS_IGNORE), "Wait");
            done = 1;
        } else {
            MPI_CHECK(MPI_Test(&k->req, &done, MPI_STATUS_IGNORE), "Test");
        }
        if (!done) return HS_OK;
        hs_status st = reduce_bucket(x, k);
        if (st != HS_OK) return st;
        x->next++;
    }
    if (wait)
        for (int i = 0; i < x->n_buckets; i++)
            if (x->b[i].stage == 1) {
                MPI_CHECK(MPI_Wait(&x->b[i].req, MPI_STATUS_IGNORE), "Wait");
                x->b[i].stage = 2;
            }
    return HS_OK;
}

hs_status hs_dist_xchg_start(hs_dist_xchg *x, float *g, int64_t b0, int64_t b1) {
    if (g_size == 1) return HS_OK;
    double t0 = omp_get_wtime();
    if (x->n_buckets >= x->max_buckets || b0 < 0 || b1 > x->n || b1 < b0)
        return hs_fail(HS_ERR_INVALID_ARG, "gradient exchange: bucket [%lld, %lld) refused",
                       (long long)b0, (long long)b1);
    bucket *k = &x->b[x->n_buckets++];
    k->g = g;
    k->b0 = b0;
    k->b1 = b1;
    k->s0 = max64(b0, x->lo[g_rank]);
    k->s1 = max64(k->s0, min64(b1, x->lo[g_rank + 1]));
    int64_t c = k->s1 - k->s0;
    for (int q = 0; q < g_size; q++) {
        int64_t a = max64(b0, x->lo[q]), b = min64(b1, x->lo[q + 1]);
        k->scount[q] = (int)(b > a ? b - a : 0);
        k->sdispl[q] = (int)(b > a ? a - b0 : 0);
        k->rcount[q] = (int)c;
        k->rdispl[q] = (int)(q * c);
        if (q != g_rank) x->bytes += (int64_t)sizeof(float) * k->scount[q];
    }
    float *rbuf = x->recv + (int64_t)g_size * (k->s0 - x->lo[g_rank]);
    k->stage = 0;
    MPI_CHECK(MPI_Ialltoallv(g + b0, k->scount, k->sdispl, MPI_FLOAT, rbuf, k->rcount,
                             k->rdispl, MPI_FLOAT, x->comm_rs, &k->req), "Ialltoallv");
    // let the buckets before it progress: MPI moves data only inside its calls
    hs_status st = advance(x, 0);
    x->time += omp_get_wtime() - t0;
    return st;
}

hs_status hs_dist_xchg_finish(hs_dist_xchg *x, double *wait_s, int64_t *bytes) {
    double t0 = omp_get_wtime();
    hs_status st = advance(x, 1);
    if (st != HS_OK) return st;
    x->time += omp_get_wtime() - t0;
    if (wait_s) *wait_s += x->time;
    if (bytes) *bytes += x->bytes;
    x->n_buckets = 0;
    x->next = 0;
    x->time = 0;
    x->bytes = 0;
    return HS_OK;
}

#else /* one process alone */

int hs_dist_with_mpi(void) { return 0; }

hs_status hs_dist_init(void) {
    int n = launched_size();
    if (n > 1 || n < 0)
        return hs_fail(HS_ERR_INVALID_ARG,
                       "started by mpirun, but this halfs was built without MPI: every rank "
                       "would train alone (install libopenmpi-dev and rebuild)");
    return HS_OK;
}
void hs_dist_finalize(void) {}
void hs_dist_abort(int code) { (void)code; }
int hs_dist_max_int(int v) { return v; }
hs_status hs_dist_check_same(uint64_t hash, const char *what) {
    (void)hash, (void)what;
    return HS_OK;
}
hs_status hs_dist_allgather_f32(const float *mine, int n, float *all) {
    memmove(all, mine, sizeof(float) * (size_t)n);
    return HS_OK;
}
hs_status hs_dist_allgatherv_f32(float *buf, const int *counts, const int *displs) {
    (void)buf, (void)counts, (void)displs;
    return HS_OK;
}
hs_status hs_dist_allgatherv_f64(double *buf, const int *counts, const int *displs) {
    (void)buf, (void)counts, (void)displs;
    return HS_OK;
}
hs_status hs_dist_gatherv_f32(const float *mine, float *all, const int *counts,
                              const int *displs) {
    memmove(all + displs[0], mine, sizeof(float) * (size_t)counts[0]);
    return HS_OK;
}
hs_status hs_dist_bcast_i32(int32_t *v, int n) {
    (void)v, (void)n;
    return HS_OK;
}

struct hs_dist_xchg {
    int unused;
};
hs_status hs_dist_xchg_create(int64_t n, const int64_t *lo, int max_buckets, int gather,
                              hs_dist_xchg **out) {
    (void)n, (void)lo, (void)max_buckets, (void)gather;
    *out = calloc(1, sizeof **out);
    return *out ? HS_OK : hs_fail(HS_ERR_NOMEM, "out of memory");
}
void hs_dist_xchg_free(hs_dist_xchg *x) { free(x); }
hs_status hs_dist_xchg_start(hs_dist_xchg *x, float *g, int64_t b0, int64_t b1) {
    (void)x, (void)g, (void)b0, (void)b1;
    return HS_OK;
}
hs_status hs_dist_xchg_finish(hs_dist_xchg *x, double *wait_s, int64_t *bytes) {
    (void)x, (void)wait_s, (void)bytes;
    return HS_OK;
}

#endif
