/* proxy.h - `cai proxy`: the client side of attested TLS for any HTTP
 * client (TNG's ingress). Clients speak plain HTTP to it on loopback; it
 * speaks attested TLS to the server and sends nothing before the server's
 * certificate verified (ratls/verify.h).
 *
 *   proxy mode    clients set http_proxy=http://127.0.0.1:41000 and ask for
 *                 http://HOST:PORT/path; the proxy opens https://HOST:PORT
 *   mapping mode  |to| = "https://HOST:PORT": http://127.0.0.1:41000/path
 *                 is https://HOST:PORT/path (a browser opens the web chat);
 *                 proxy requests are still served
 *
 * Answers stream through unbuffered (server-sent events). Each answer from
 * a verified server carries X-Cai-Attested (what was verified);
 * GET /.cai/proxy answers what the proxy verified, as JSON (the web chat's
 * attestation panel reads it). A server that fails verification gets no
 * byte of the request; the client gets 502 with a JSON body naming the
 * check. One line per newly verified certificate goes to stdout. */
#ifndef CAI_CLIENT_PROXY_H
#define CAI_CLIENT_PROXY_H

#include <stddef.h>

#include "common/status.h"
#include "ratls/verify.h"

typedef struct {
    const char *host;        /* listen address, default 127.0.0.1 */
    int port;                /* default 41000; 0: ephemeral */
    const char *to;          /* mapping mode's server, or NULL: proxy mode */
    ratls_verifier *verifier; /* must outlive the proxy */
    int workers;             /* upstream connections at once, default 16 */
    size_t max_body;         /* default 8 MiB */
} proxy_config;

typedef struct proxy proxy;

cai_status proxy_new(const proxy_config *c, proxy **out) CAI_WUR;
int proxy_port(const proxy *p);
/* proxy_run serves until SIGINT/SIGTERM or proxy_stop. */
cai_status proxy_run(proxy *p);
void proxy_stop(proxy *p);
void proxy_free(proxy *p);

#endif
