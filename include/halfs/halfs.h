/* halfs/halfs.h: the whole public API of the halfs FP4 numerics library. */
#ifndef HALFS_HALFS_H
#define HALFS_HALFS_H

#include "halfs/status.h"
#include "halfs/quant.h"
#include "halfs/codec.h"
#include "halfs/rng.h"
#include "halfs/rht.h"
#include "halfs/stats.h"
#include "halfs/theory.h"
#include "halfs/gemm.h"

#endif
