/* dist.h: the processes of a data-parallel run (Open MPI) behind one small interface.
 *
 * Every MPI call of halfs lives in dist.c. Built with MPI (the Makefile defines HS_HAVE_MPI when
 * `mpicc` is found), a process started by mpirun joins the job in hs_dist_init; a process
 * started without mpirun, or a build without MPI, is one rank of one and every function below
 * is then a no-op or a local copy, so single-process runs never touch MPI.
 *
 * Collectives must be called by every rank in the same order (MPI's rule). The gradient
 * exchange (hs_dist_xchg) is a reduce-scatter + all-gather written as MPI_Ialltoallv +
 * MPI_Iallgatherv so that each element's sum is a left fold over the ranks in rank order,
 * ((g_0 + g_1) + g_2) + ..., whatever algorithm MPI picks: results do not depend on the
 * network, the MPI version or the run, and ZeRO-1 (which stops after the reduce-scatter) sees
 * exactly the sums ZeRO-0 does. docs/DISTRIBUTED.md describes the scheme.
 */
#ifndef HALFS_TRAIN_DIST_H
#define HALFS_TRAIN_DIST_H

#include <stdint.h>

#include "halfs/status.h"

/* Join the MPI job when this process was started by mpirun (Open MPI's OMPI_COMM_WORLD_SIZE
 * or PMIx's PMIX_RANK in the environment); otherwise (or called again) nothing. A build
 * without MPI started by mpirun with more than one rank fails: every rank would train alone. */
hs_status hs_dist_init(void);
/* Leave the job (MPI_Finalize) after a run every rank finished the same way. */
void hs_dist_finalize(void);
/* End the whole job now with exit status code (MPI_Abort): for an error only this rank saw,
 * where waiting for the others would hang. Returns only when not in a job. */
void hs_dist_abort(int code);

int hs_dist_rank(void);    /* 0 when not in a job */
int hs_dist_size(void);    /* 1 when not in a job */
int hs_dist_with_mpi(void); /* 1: this build has MPI */

/* Every rank gets the largest of the ranks' v (an agreement on an error code or a stop). */
int hs_dist_max_int(int v);
/* HS_OK when every rank passed the same hash, else HS_ERR_INVALID_ARG naming what and the
 * first rank that differs from rank 0 (the same status on every rank). */
hs_status hs_dist_check_same(uint64_t hash, const char *what);
/* all (n·size floats, rank-major) receives every rank's n floats of mine. */
hs_status hs_dist_allgather_f32(const float *mine, int n, float *all);
/* In place: rank r's counts[r] elements at buf + displs[r] go to every rank. */
hs_status hs_dist_allgatherv_f32(float *buf, const int *counts, const int *displs);
hs_status hs_dist_allgatherv_f64(double *buf, const int *counts, const int *displs);
/* Rank 0's all receives rank r's counts[r] floats of mine at all + displs[r] (all: only read
 * on rank 0, may be NULL elsewhere). */
hs_status hs_dist_gatherv_f32(const float *mine, float *all, const int *counts,
                              const int *displs);
/* Rank 0's n int32 values to every rank. */
hs_status hs_dist_bcast_i32(int32_t *v, int n);

/* The gradient exchange of one step over a flat fp32 array of n elements, owned in shards:
 * rank r owns [lo[r], lo[r+1]) (lo[0] = 0, lo[size] = n, non-decreasing). Buckets (contiguous
 * ranges, at most max_buckets per step) are started as the backward pass produces them and
 * complete in hs_dist_xchg_finish. gather = 1: afterwards every rank holds the summed array
 * (all-reduce); gather = 0: only its own shard holds the sums (reduce-scatter; ZeRO-1). */
typedef struct hs_dist_xchg hs_dist_xchg;
hs_status hs_dist_xchg_create(int64_t n, const int64_t *lo, int max_buckets, int gather,
                              hs_dist_xchg **out);
void hs_dist_xchg_free(hs_dist_xchg *x);
/* Start the exchange of g[b0, b1) (g is the whole array; it must stay untouched until finish).
 * Also moves earlier buckets along (their sums, their all-gathers). */
hs_status hs_dist_xchg_start(hs_dist_xchg *x, float *g, int64_t b0, int64_t b1);
/* Complete every bucket started since the last finish. *wait_s (may be NULL) += the seconds
 * spent waiting; *bytes (may be NULL) += the bytes this rank handed MPI for the other ranks. */
hs_status hs_dist_xchg_finish(hs_dist_xchg *x, double *wait_s, int64_t *bytes);

#endif
