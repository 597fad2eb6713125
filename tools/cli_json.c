/* cli_json.c: JSON output shared by the subcommands' --json modes: numbers that may be
 * non-finite (written as null, since JSON has no NaN or Inf), printing a cJSON tree, and string
 * literals written directly to stdout. */
#include <math.h>
#include <stdio.h>

#include <cjson/cJSON.h>

#include "cli.h"

void cli_json_number(cJSON *obj, const char *key, double v) {
    if (isfinite(v))
        cJSON_AddNumberToObject(obj, key, v);
    else
        cJSON_AddNullToObject(obj, key);
}

int cli_json_print(cJSON *root) {
    char *s = cJSON_Print(root);
    cJSON_Delete(root);
    if (!s) {
        cli_error("out of memory printing JSON");
        return CLI_INTERNAL;
    }
    puts(s);
    cJSON_free(s);
    return fflush(stdout) == 0 ? CLI_OK : CLI_INTERNAL;
}

void cli_json_put_string(const char *s) {
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') printf("\\%c", *p);
        else if (*p < 0x20) printf("\\u%04x", *p);
        else putchar(*p);
    }
    putchar('"');
}
