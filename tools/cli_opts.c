/* cli_opts.c: the one option parser of every `halfs` command and benchmark: a table of options
 * (cli_opt: name, type, destination, range, help text) turns argv into values, a "given" count
 * per option and the operands; the same table prints the options part of --help (cli.h).
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

_Static_assert(sizeof(int) == sizeof(int32_t), "CLI_FLAG writes an int into int32_t fields");

static const cli_opt *find(const cli_opt *opts, const char *a, size_t len) {
    for (; opts->name; opts++) {
        if (strlen(opts->name) == len && !strncmp(opts->name, a, len)) return opts;
        if (opts->alias && strlen(opts->alias) == len && !strncmp(opts->alias, a, len))
            return opts;
    }
    return NULL;
}

/* Store value v of option o (named `as` on the command line). Returns 1, or 0 after printing
 * why v is not a value of o. */
static int set_value(const cli_opt *o, const char *as, const char *v) {
    int64_t i;
    switch (o->type) {
    case CLI_STR:
        *(const char **)o->dst = v;
        return 1;
    case CLI_BUF:
        if (strlen(v) >= o->size) {
            cli_error("%s '%.40s%s' is too long (at most %zu characters)", as, v,
                      strlen(v) > 40 ? "..." : "", o->size - 1);
            return 0;
        }
        memcpy(o->dst, v, strlen(v) + 1);
        return 1;
    case CLI_LIST: {
        /* The first occurrence replaces the default; later ones append after a ','. */
        char *d = o->dst;
        size_t have = o->given ? strlen(d) : 0, n = strlen(v);
        if (have + n + 2 > o->size) {
            cli_error("%s: values longer than %zu characters", as, o->size - 1);
            return 0;
        }
        if (have) d[have++] = ',';
        memcpy(d + have, v, n + 1);
        return 1;
    }
    case CLI_I32:
    case CLI_I64:
        if (!cli_parse_i64(as, v, o->lo, o->hi, &i)) return 0;
        if (o->type == CLI_I32) *(int32_t *)o->dst = (int32_t)i;
        else *(int64_t *)o->dst = i;
        return 1;
    case CLI_U64:
        return cli_parse_u64(as, v, (uint64_t *)o->dst);
    case CLI_F64:
        return cli_parse_f64(as, v, o->flo, o->fhi, (double *)o->dst);
    case CLI_FN:
        return o->fn(as, v, o->dst);
    case CLI_FLAG:
        break;
    }
    *(int *)o->dst = 1;
    return 1;
}

int cli_parse(const cli_command *cmd, int argc, char **argv, const char **operands,
              int *n_operands) {
    int n = 0;
    if (n_operands) *n_operands = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            cmd->help(stdout);
            return CLI_HELP;
        }
        if (a[0] != '-' || a[1] == '\0') { /* an operand; "-" names standard input or output */
            if (cmd->max_operands >= 0 && n >= cmd->max_operands) {
                if (cmd->operands) cli_error("unexpected operand '%s' (%s)", a, cmd->operands);
                else cli_error("unexpected operand '%s'", a);
                cli_hint("run `halfs %s --help`", cmd->name);
                return CLI_USAGE;
            }
            operands[n++] = a;
            if (n_operands) *n_operands = n;
            continue;
        }
        /* "--name value" or "--name=value" */
        const char *eq = strchr(a, '=');
        size_t len = eq ? (size_t)(eq - a) : strlen(a);
        cli_opt *o = (cli_opt *)find(cmd->opts, a, len);
        if (!o || (eq && o->type == CLI_FLAG)) {
            cli_error("unknown option '%s'", a);
            cli_hint("run `halfs %s --help` for the options", cmd->name);
            return CLI_USAGE;
        }
        char as[64];
        snprintf(as, sizeof as, "%.*s", (int)(len < 63 ? len : 63), a);
        const char *v = NULL;
        if (o->type != CLI_FLAG) {
            if (eq) {
                v = eq + 1;
            } else if (i + 1 < argc) {
                v = argv[++i];
            } else {
                cli_error("%s needs a value", a);
                cli_hint("run `halfs %s --help`", cmd->name);
                return CLI_USAGE;
            }
        }
        if (!set_value(o, as, v)) {
            if (o->hint) cli_hint("%s", o->hint);
            return CLI_USAGE;
        }
        o->given++;
    }
    return CLI_OK;
}

/* "-o, --out PATH": the option as --help lists it. */
static int label(const cli_opt *o, char *buf, size_t n) {
    return snprintf(buf, n, "%s%s%s%s%s", o->alias ? o->alias : "", o->alias ? ", " : "",
                    o->name, o->arg ? " " : "", o->arg ? o->arg : "");
}

void cli_opts_help(FILE *out, const cli_opt *opts) {
    enum { MAX_COL = 18 };
    int w = 6; /* "--help" */
    for (const cli_opt *o = opts; o->name; o++) {
        char buf[128];
        int len = label(o, buf, sizeof buf);
        if (o->help && len > w && len <= MAX_COL) w = len;
    }
    const char *section = NULL;
    for (const cli_opt *o = opts; o->name; o++) {
        if (!o->help) continue;
        if (o->section && (!section || strcmp(section, o->section))) {
            section = o->section;
            fprintf(out, "%s:\n", section);
        }
        char buf[128];
        int len = label(o, buf, sizeof buf);
        if (len > w) fprintf(out, "  %s\n%*s", buf, w + 4, "");
        else fprintf(out, "  %-*s  ", w, buf);
        /* Continuation lines of the help text line up under its first line. */
        for (const char *p = o->help; *p;) {
            const char *nl = strchr(p, '\n');
            int k = nl ? (int)(nl - p) : (int)strlen(p);
            fprintf(out, "%.*s\n", k, p);
            p += k;
            if (*p == '\n' && *++p) fprintf(out, "%*s", w + 4, "");
        }
    }
    fprintf(out, "  %-*s  this text\n", w, "--help");
}
