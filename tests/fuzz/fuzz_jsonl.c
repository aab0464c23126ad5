/*
 * fuzz_jsonl.c -- libFuzzer target for the CLI's JSON-lines readers (src/cli/jsonl.c): the exact
 * string decoder cli_json_get_string, and cli_json_line, the strict whole-line check (JSON, nothing
 * after it, valid UTF-8) that `rerank score` and `rerank rank` apply to every line. The two must
 * agree on lines without an escaped NUL: a string the decoder finds in a line the strict check
 * accepts has at least the length of the value cJSON sees.
 */
#include "cli/cli.h"
#include "core/core.h"

#include <cjson/cJSON.h>

#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *line = (const char *)data;
    static const char *const keys[] = {"text", "query", "document", "_id", ""};
    rr_buf out = {0};
    int found[5];
    for (int k = 0; k < 5; k++) {
        found[k] = cli_json_get_string(line, size, keys[k], &out);
        if (found[k] < -1 || found[k] > 1) abort();
        if (found[k] == 1 && out.data && out.data[out.len] != 0) abort();
    }
    char err[256];
    cJSON *j = NULL;
    if (cli_json_line(line, size, &j, err, sizeof err) == 0) {
        if (!j) abort();
        /* cJSON ends keys and strings at an escaped NUL, so with one in the line the two readers may
         * rightly see different members; the agreement check holds only without */
        bool has_nul = memmem(line, size, "\\u0000", 6) != NULL;
        for (int k = 0; k < 5 && !has_nul; k++) {
            const cJSON *v = cJSON_IsObject(j) ? cJSON_GetObjectItemCaseSensitive(j, keys[k]) : NULL;
            if (found[k] == 1 && cJSON_IsString(v)) {
                out.len = 0;
                if (cli_json_get_string(line, size, keys[k], &out) != 1) abort();
                if (out.len < strlen(v->valuestring)) abort();
            }
        }
        cJSON_Delete(j);
    } else if (!err[0] || j) {
        abort();
    }
    rr_buf_free(&out);
    return 0;
}
