/* cmd_tokenizer.c: `halfs tokenizer train|encode|decode`: byte-level BPE tokenizers
 * (src/train/tokenizer.h) and llm.c token shards (src/train/dataset.h) from the command line.
 * Text inputs may be gzip'ed. Every input problem exits 1 before any output is written; outputs
 * are written atomically.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "train/corpus.h"
#include "train/dataset.h"
#include "train/fileio.h"
#include "train/tokenizer.h"

/* What the options set. */
typedef struct {
    const char *tok_path, *out_path;
    int64_t vocab;
    int ids_mode;
} tok_args;

enum { TOK_NOPTS = 5 };

/* Defaults into *t and the option table over it into opts[TOK_NOPTS]. */
static void tok_table(tok_args *t, cli_opt *opts) {
    *t = (tok_args){.vocab = 4096};
    const cli_opt o[TOK_NOPTS] = {
        {.name = "--vocab", .type = CLI_I64, .dst = &t->vocab, .lo = 256,
         .hi = HS_TOKENIZER_MAX_VOCAB, .arg = "N",
         .help = "tokens in the vocabulary, 256..65536 (256 byte tokens + merges)\n"
                 "(default: 4096)"},
        {.name = "--tokenizer", .type = CLI_STR, .dst = &t->tok_path, .arg = "PATH",
         .help = "a tokenizer.json (encode, decode; required)"},
        {.name = "--ids", .type = CLI_FLAG, .dst = &t->ids_mode,
         .help = "encode: write the ids as decimal text, one per line, instead\n"
                 "of a shard; decode: read such a text file instead of a shard"},
        {.name = "--out", .alias = "-o", .type = CLI_STR, .dst = &t->out_path, .arg = "PATH",
         .help = "output file, `-` for standard output (required)"},
        {.name = NULL},
    };
    memcpy(opts, o, sizeof o);
}

static void tok_help(FILE *out) {
    fprintf(out,
        "usage: halfs tokenizer train [--vocab N] -o TOKENIZER.json FILE...\n"
        "       halfs tokenizer encode --tokenizer TOKENIZER.json [--ids] -o OUT IN\n"
        "       halfs tokenizer decode --tokenizer TOKENIZER.json [--ids] -o OUT IN\n"
        "\n"
        "Byte-level BPE (GPT-2 style). `train` learns merges from the text FILEs (plain or\n"
        "gzip'ed) and writes a Hugging Face tokenizer.json (BPE model, ByteLevel\n"
        "pre-tokenizer and decoder). `encode` turns a text file into an llm.c token shard\n"
        "(.bin: 256-int32 header, magic 20240520, version 1, then uint16 tokens); `decode`\n"
        "turns a shard back into text. Any byte string round-trips exactly.\n"
        "\n"
        "options:\n");
    tok_args t;
    cli_opt opts[TOK_NOPTS];
    tok_table(&t, opts);
    cli_opts_help(out, opts);
    fprintf(out,
        "\n"
        "exit status: 0 ok; 1 usage or input error (no output written); 2 internal error.\n"
        "example: halfs tokenizer train --vocab 4096 -o tok.json book.txt\n"
        "         halfs tokenizer encode --tokenizer tok.json -o book.bin book.txt\n");
}

static int write_out(const char *path, const void *data, size_t n) {
    if (!strcmp(path, "-")) {
        if (n && fwrite(data, 1, n, stdout) != n) {
            cli_error("cannot write to standard output");
            return CLI_INTERNAL;
        }
        fflush(stdout);
        return CLI_OK;
    }
    return cli_write_atomic(path, data, n) ? CLI_USAGE : CLI_OK;
}

/* Parse a file of decimal ids separated by white space. */
static int read_ids(const char *path, int32_t **ids, int64_t *n) {
    char *text;
    size_t len;
    hs_status st = hs_file_read_all(path, (size_t)1 << 31, &text, &len);
    if (st != HS_OK) return cli_fail_status(st, "reading ids");
    int64_t cap = 1024, k = 0;
    int32_t *out = malloc((size_t)cap * sizeof *out);
    char *p = text;
    while (out) {
        while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r') p++;
        if (!*p) break;
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || (*end && *end != ' ' && *end != '\n' && *end != '\t' && *end != '\r') ||
            v < 0 || v > 65535) {
            cli_error("'%s': '%.20s' is not a token id (0..65535)", path, p);
            free(out);
            free(text);
            return CLI_USAGE;
        }
        if (k == cap) {
            cap *= 2;
            int32_t *q = realloc(out, (size_t)cap * sizeof *q);
            if (!q) {
                free(out);
                out = NULL;
                break;
            }
            out = q;
        }
        out[k++] = (int32_t)v;
        p = end;
    }
    free(text);
    if (!out) {
        cli_error("out of memory");
        return CLI_INTERNAL;
    }
    *ids = out;
    *n = k;
    return CLI_OK;
}

int cmd_tokenizer(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        tok_help(argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    const char *mode = argv[1];
    int is_train = !strcmp(mode, "train"), is_enc = !strcmp(mode, "encode"),
        is_dec = !strcmp(mode, "decode");
    if (!is_train && !is_enc && !is_dec) {
        cli_error("unknown tokenizer action '%s'", mode);
        cli_hint("use `halfs tokenizer train|encode|decode`; see `halfs tokenizer --help`");
        return CLI_USAGE;
    }
    tok_args ta;
    cli_opt opts[TOK_NOPTS];
    tok_table(&ta, opts);
    const char **files = calloc((size_t)argc, sizeof *files);
    int n_files = 0;
    if (!files) return CLI_INTERNAL;
    const cli_command cmd = {"tokenizer", opts, tok_help, -1, NULL};
    int rc = cli_parse(&cmd, argc - 1, argv + 1, files, &n_files);
    if (rc != CLI_OK) {
        free(files);
        return rc == CLI_HELP ? CLI_OK : rc;
    }
    const char *tok_path = ta.tok_path, *out_path = ta.out_path;
    int64_t vocab = ta.vocab;
    int ids_mode = ta.ids_mode;
    if (!out_path) {
        cli_error("no output: give -o PATH (or -o - for standard output)");
        rc = CLI_USAGE;
    } else if (n_files == 0) {
        cli_error("no input file");
        rc = CLI_USAGE;
    } else if (!is_train && n_files != 1) {
        cli_error("%s takes exactly one input file, got %d", mode, n_files);
        rc = CLI_USAGE;
    } else if (!is_train && !tok_path) {
        cli_error("%s needs --tokenizer TOKENIZER.json", mode);
        rc = CLI_USAGE;
    } else if (is_train && (tok_path || ids_mode)) {
        cli_error("train does not take --tokenizer or --ids");
        rc = CLI_USAGE;
    }
    if (rc != CLI_OK) {
        cli_hint("run `halfs tokenizer --help`");
        free(files);
        return rc;
    }

    if (is_train) {
        char **texts = calloc((size_t)n_files, sizeof *texts);
        size_t *lens = calloc((size_t)n_files, sizeof *lens);
        for (int k = 0; texts && lens && k < n_files && rc == CLI_OK; k++) {
            hs_status st = hs_text_read(files[k], &texts[k], &lens[k]);
            if (st != HS_OK) rc = cli_fail_status(st, "reading training text");
        }
        hs_tokenizer *t = NULL;
        if (rc == CLI_OK && texts && lens) {
            hs_status st = hs_tokenizer_train((const unsigned char *const *)texts, lens, n_files,
                                              (int)vocab, &t);
            if (st != HS_OK) rc = cli_fail_status(st, "training the tokenizer");
        }
        if (rc == CLI_OK && t) {
            if (hs_tokenizer_vocab_size(t) < vocab)
                fprintf(stderr, "halfs: note: only %d tokens: the text has no more pairs to merge\n",
                        hs_tokenizer_vocab_size(t));
            char *json = hs_tokenizer_to_json(t);
            if (!json) {
                cli_error("out of memory");
                rc = CLI_INTERNAL;
            } else {
                size_t n = strlen(json);
                json[n] = '\n';
                rc = write_out(out_path, json, n + 1);
                free(json);
            }
        }
        hs_tokenizer_free(t);
        for (int k = 0; texts && k < n_files; k++) free(texts[k]);
        free(texts);
        free(lens);
        free(files);
        return rc;
    }

    hs_tokenizer *t = NULL;
    hs_status st = hs_tokenizer_load(tok_path, &t);
    if (st != HS_OK) {
        free(files);
        return cli_fail_status(st, "loading the tokenizer");
    }
    if (is_enc) {
        char *text;
        size_t n;
        st = hs_text_read(files[0], &text, &n);
        if (st != HS_OK) {
            rc = cli_fail_status(st, "reading the text");
        } else {
            int32_t *ids;
            int64_t n_ids;
            st = hs_tokenizer_encode(t, text, n, &ids, &n_ids);
            free(text);
            if (st != HS_OK) {
                rc = cli_fail_status(st, "encoding");
            } else if (ids_mode) {
                char *buf = malloc((size_t)n_ids * 7 + 1);
                size_t at = 0;
                for (int64_t i = 0; buf && i < n_ids; i++)
                    at += (size_t)sprintf(buf + at, "%d\n", ids[i]);
                rc = buf ? write_out(out_path, buf, at) : CLI_INTERNAL;
                free(buf);
                free(ids);
            } else if (!strcmp(out_path, "-")) {
                cli_error("a shard cannot go to standard output; give -o FILE.bin (or use --ids)");
                rc = CLI_USAGE;
                free(ids);
            } else {
                uint16_t *u = malloc((size_t)(n_ids ? n_ids : 1) * sizeof *u);
                for (int64_t i = 0; u && i < n_ids; i++) u[i] = (uint16_t)ids[i];
                st = u ? hs_shard_write(out_path, u, n_ids) : HS_ERR_NOMEM;
                if (st != HS_OK) rc = cli_fail_status(st, "writing the shard");
                free(u);
                free(ids);
            }
        }
    } else {
        int32_t *ids = NULL;
        int64_t n_ids = 0;
        if (ids_mode) {
            rc = read_ids(files[0], &ids, &n_ids);
        } else {
            hs_dataset *d;
            st = hs_dataset_open(files[0], &d);
            if (st != HS_OK) {
                rc = cli_fail_status(st, "reading the shard");
            } else {
                n_ids = hs_dataset_size(d);
                ids = malloc((size_t)n_ids * sizeof *ids);
                const uint16_t *tk = hs_dataset_tokens(d);
                for (int64_t i = 0; ids && i < n_ids; i++) ids[i] = tk[i];
                if (!ids) rc = CLI_INTERNAL;
                hs_dataset_close(d);
            }
        }
        if (rc == CLI_OK) {
            char *text;
            size_t n;
            st = hs_tokenizer_decode(t, ids, n_ids, &text, &n);
            if (st != HS_OK) {
                rc = cli_fail_status(st, "decoding");
                cli_hint("was the data encoded with this tokenizer (%d tokens)?",
                         hs_tokenizer_vocab_size(t));
            } else {
                rc = write_out(out_path, text, n);
                free(text);
            }
        }
        free(ids);
    }
    hs_tokenizer_free(t);
    free(files);
    return rc;
}
