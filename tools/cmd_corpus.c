/* cmd_corpus.c: `halfs corpus`: prepare (on first use) and locate the embedded default corpus:
 * its tokenizer.json and the token shards of the pretraining text (King James Bible) and of the
 * held-out fine-tuning text (The Devil's Dictionary), all encoded with the same tokenizer
 * (src/train/corpus.h, data/README.md). Scripts read the paths from --json.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "train/corpus.h"
#include "train/dataset.h"
#include "train/tokenizer.h"

static void corpus_help(FILE *out) {
    fprintf(out,
        "usage: halfs corpus [--vocab N] [--cache DIR] [--json]\n"
        "\n"
        "Prepare the embedded corpus (data/*.txt.gz) if it is not cached yet: train a byte-level\n"
        "BPE tokenizer on the pretraining text and encode every split with it into llm.c\n"
        "token shards. Prints where the files are:\n"
        "  tokenizer  tokenizer.json (Hugging Face ByteLevel BPE)\n"
        "  train val  pretraining shards: King James Bible (every 20th chapter is val)\n"
        "  ft-train ft-val  fine-tuning shards: The Devil's Dictionary, never seen in\n"
        "             pretraining (every 20th entry is val)\n"
        "\n"
        "options:\n"
        "  --vocab N    tokenizer size, 256..65536 (default: %d)\n"
        "  --cache DIR  cache directory (default: $HALFS_CACHE, else $XDG_CACHE_HOME/halfs,\n"
        "               else ~/.cache/halfs)\n"
        "  --json       print one JSON object instead of a table\n"
        "  --help       this text\n"
        "\n"
        "The corpus files are found through $HALFS_DATA, else ../data or ../../data next to\n"
        "the halfs binary.\n"
        "exit status: 0 ok; 1 usage or input error (e.g. corpus not found); 2 internal error.\n",
        HS_CORPUS_DEFAULT_VOCAB);
}

int cmd_corpus(int argc, char **argv) {
    int64_t vocab = HS_CORPUS_DEFAULT_VOCAB;
    const char *cache = NULL;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            corpus_help(stdout);
            return CLI_OK;
        } else if (!strcmp(a, "--json")) {
            json = 1;
        } else if (!strcmp(a, "--vocab") || !strcmp(a, "--cache")) {
            const char *v = cli_opt_next(argc, argv, &i, "corpus");
            if (!v) return CLI_USAGE;
            if (!strcmp(a, "--cache")) cache = v;
            else if (!cli_parse_i64("--vocab", v, 256, HS_TOKENIZER_MAX_VOCAB, &vocab)) return CLI_USAGE;
        } else {
            cli_error("unknown argument '%s'", a);
            cli_hint("run `halfs corpus --help`");
            return CLI_USAGE;
        }
    }
    hs_corpus c;
    hs_status st = hs_corpus_default(cache, (int)vocab, &c);
    if (st != HS_OK) return cli_fail_status(st, "preparing the embedded corpus");
    const char *names[5] = {"train", "val", "ft_train", "ft_val", NULL};
    const char *paths[4] = {c.train, c.val, c.ft_train, c.ft_val};
    int64_t counts[4];
    for (int k = 0; k < 4; k++) {
        hs_dataset *d;
        if ((st = hs_dataset_open(paths[k], &d)) != HS_OK)
            return cli_fail_status(st, "reading the cached corpus");
        counts[k] = hs_dataset_size(d);
        hs_dataset_close(d);
    }
    if (json) {
        printf("{\"vocab\": %d, \"cached\": %s, \"dir\": ", c.vocab, c.cached ? "true" : "false");
        cli_json_put_string(c.dir);
        printf(", \"tokenizer\": ");
        cli_json_put_string(c.tokenizer);
        for (int k = 0; k < 4; k++) {
            printf(", \"%s\": ", names[k]);
            cli_json_put_string(paths[k]);
            printf(", \"%s_tokens\": %lld", names[k], (long long)counts[k]);
        }
        printf("}\n");
    } else {
        printf("corpus %s (vocab %d, %s)\n", c.dir, c.vocab, c.cached ? "cached" : "prepared now");
        printf("  %-9s %s\n", "tokenizer", c.tokenizer);
        for (int k = 0; k < 4; k++)
            printf("  %-9s %s (%lld tokens)\n", names[k], paths[k], (long long)counts[k]);
    }
    return CLI_OK;
}
