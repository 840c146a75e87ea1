#include "common/respath.h"

#include <string.h>

/* 1 if the |n| bytes at |s| are one segment: not empty, not starting with
 * '.', only A-Z a-z 0-9 . _ -. */
static int segment_valid(const char *s, size_t n) {
    if (n == 0 || s[0] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

int respath_valid(const char *path) {
    if (strlen(path) > RESPATH_MAX)
        return 0;
    const char *p = path;
    for (int seg = 0; seg < 3; seg++) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (!segment_valid(p, n))
            return 0;
        if ((seg < 2) != (slash != NULL)) /* a '/' after the first two only */
            return 0;
        p = slash ? slash + 1 : p + n;
    }
    return 1;
}
