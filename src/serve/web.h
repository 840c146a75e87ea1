/* web.h - the web chat's files, embedded in the binary at build time
 * (tools/embed_web.sh turns web/ into a C table). */
#ifndef CAI_SERVE_WEB_H
#define CAI_SERVE_WEB_H

#include <stddef.h>

typedef struct {
    const char *path; /* "/index.html", "/static/app.js", ... */
    const char *type; /* Content-Type */
    const unsigned char *data;
    size_t len;
} web_asset;

extern const web_asset web_assets[];
extern const size_t web_assets_count;

#endif
