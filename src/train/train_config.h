/* train_config.h: the one list of the training configuration's fields (hs_train_config,
 * trainer.h). Each entry names a field (its offset, type and size), its key in
 * trainer_state.json, its default, its `halfs train` option with the --help text, and what
 * `--resume` does with it. The defaults (hs_train_config_defaults), the JSON of the run state
 * (src/train/checkpoint.c) and the options of `halfs train` with their --help lines
 * (tools/cmd_train.c) all come from this table.
 */
#ifndef HALFS_TRAIN_TRAIN_CONFIG_H
#define HALFS_TRAIN_TRAIN_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "train/trainer.h"

typedef enum {
    HS_CFG_STR,  /* char[size] */
    HS_CFG_LIST, /* char[size] of ','-separated items; a repeated option appends */
    HS_CFG_I32,  /* int32_t */
    HS_CFG_I64,  /* int64_t */
    HS_CFG_U64,  /* uint64_t; in JSON a decimal string (64 bits do not fit a double) */
    HS_CFG_F32,  /* float; in JSON the shortest decimal that reads back exactly */
    HS_CFG_F64,  /* double; in JSON 17 significant digits (reads back exactly) */
    HS_CFG_FLAG, /* int32_t 0 or 1; the option takes no value and sets 1 */
} hs_cfg_type;

/* What `halfs train --resume DIR` does with a field: the run's saved config is the start. */
typedef enum {
    HS_CFG_KEEP,     /* the saved value stays (fields without an option) */
    HS_CFG_REFUSE,   /* the option is refused: it would make the run a different run (model,
                        recipe, data, seed, batch shape, schedule, directory) */
    HS_CFG_CHANGE,   /* the option, when given, replaces the saved value */
    HS_CFG_EACH_RUN, /* this invocation's value, given or default, never the saved one */
} hs_cfg_resume;

typedef struct hs_cfg_field {
    const char *group;   /* JSON object of "config" holding the key: NULL, "model" or "recipe" */
    const char *key;     /* JSON key (the struct member's name) */
    hs_cfg_type type;
    size_t offset, size; /* in hs_train_config */
    const char *dflt;    /* the default as text; NULL: from the model preset or the recipe
                            module (hs_recipe_opts_defaults) */
    const char *opt;     /* the `halfs train` option ("--steps"); NULL: none */
    const char *arg;     /* the option's value in --help ("N"); NULL for a flag */
    int64_t lo, hi;      /* accepted option values (integers and reals) */
    const char *section; /* --help section: "model", "recipe", "data", "schedule", "run" */
    const char *help;    /* --help text, lines separated by '\n' */
    hs_cfg_resume resume;
    int optional;        /* a trainer_state.json without the key (an older run's) reads as the
                            default; every other field is required */
    int omit_default;    /* written to trainer_state.json only when it differs from the default
                            (with optional: so single-process runs' files stay as they were) */
    const char *absent;  /* with optional: the value of a file without the key, when that is
                            not the default (an older run's behaviour); NULL: the default */
} hs_cfg_field;

/* The fields, in the order of trainer_state.json ("model" and "recipe" groups contiguous). */
extern const hs_cfg_field hs_train_config_fields[];
extern const int hs_train_config_n_fields;

/* The field's storage in c. */
static inline void *hs_cfg_field_ptr(const hs_cfg_field *f, hs_train_config *c) {
    return (char *)c + f->offset;
}
static inline const void *hs_cfg_field_cptr(const hs_cfg_field *f, const hs_train_config *c) {
    return (const char *)c + f->offset;
}

/* Set field f of c from text in the option's syntax (the table's own values: always valid). */
void hs_cfg_field_set_text(const hs_cfg_field *f, hs_train_config *c, const char *text);

/* The value of field f in c as text ("1000", "0.003", "mxfp4-halfs"; %g for reals) into buf. */
void hs_cfg_field_format(const hs_cfg_field *f, const hs_train_config *c, char *buf, size_t n);

#endif
