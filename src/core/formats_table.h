/* formats_table.h (internal): the element and scale formats as data (docs/FORMATS.md §1, §3).
 *
 * One const descriptor per hs_elem / hs_scale_fmt drives the generic quantizer: the scale rules
 * read `max`, `emax` and `mbits`, the packer reads `bits`. Kernels may include this header
 * (-Isrc) to stay in step with the reference quantizer. */
#ifndef HALFS_CORE_FORMATS_TABLE_H
#define HALFS_CORE_FORMATS_TABLE_H

#include "halfs/quant.h"

typedef struct hs_elem_desc {
    const char *name;  /* "e2m1", "e4m3", ... */
    int bits;          /* storage bits per element: 4, 8, 16 or 32 */
    float max;         /* largest finite magnitude; the rules map a group's amax near it */
    int emax;          /* floor(log2 max): the `emax` of the E8M0 rules (FORMATS.md §6) */
    int mbits;         /* mantissa bits (the `even` rule's threshold 2 − 2^−(mbits+1)) */
    int is_float;      /* 1 for floating elements (E2M1/E4M3/E5M2/BF16/FP32) */
    int scaled;        /* 1 if the element takes a scale (0 for BF16, FP32) */
} hs_elem_desc;

typedef struct hs_scale_desc {
    const char *name;  /* "none", "E8M0", "UE4M3", "FP32" */
    int bytes;         /* bytes per stored scale (0 for none) */
    int pow2;          /* 1 for E8M0: the power-of-two rules apply */
} hs_scale_desc;

const hs_elem_desc *hs_elem_info(hs_elem e);          /* NULL if out of range */
const hs_scale_desc *hs_scale_info(hs_scale_fmt f);   /* NULL if out of range */
const char *hs_scale_fmt_name(hs_scale_fmt f);

#endif
