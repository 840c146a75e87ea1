/* trust.c - a verifier's trust roots and collateral from command options. */
#include "attest/trust.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "attest/pccs.h"
#include "attest/sim.h"
#include "common/buf.h"
#include "common/file.h"
#include "common/log.h"

struct attest_trust {
    attest_verifier v;
    tdx_collateral *tdx, *sim;
    pccs *provider;
    buf sim_root;
};

/* Returns 1 if the folder |path| holds a file named tdx-*.json. */
static int has_cache_file(const char *path) {
    DIR *d = opendir(path);
    struct dirent *e;
    int found = 0;
    while (d && !found && (e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        found = n > 9 && strncmp(e->d_name, "tdx-", 4) == 0 && strcmp(e->d_name + n - 5, ".json") == 0;
    }
    if (d)
        closedir(d);
    return found;
}

/* Loads --collateral |path| into |*coll|, or, for a folder without
 * collateral.json but with tdx-FMSPC-CA.json files (an offline folder, as
 * a PCCS cache writes them), makes an offline provider of it in |*provider|.
 * A folder with neither is tdx_collateral_load's error (at start, not at the
 * first quote). */
static cai_status load_collateral(const char *path, tdx_collateral **coll, pccs **provider) {
    char p[4096];
    struct stat s;
    snprintf(p, sizeof(p), "%s/%s", path, SIM_COLLATERAL);
    if (stat(path, &s) == 0 && S_ISDIR(s.st_mode) && access(p, R_OK) != 0 && has_cache_file(path)) {
        pccs_config pc = {.cache_dir = path};
        return pccs_new(&pc, provider);
    }
    return tdx_collateral_load(path, coll);
}

cai_status attest_trust_new(const attest_trust_opts *o, attest_trust **out) {
    *out = NULL;
    if (o->collateral && o->pccs_url)
        return cai_fail(CAI_ERR_INVALID_ARG, "--collateral and --pccs exclude each other");
    if (o->pccs_cache && !o->pccs_url)
        return cai_fail(CAI_ERR_INVALID_ARG, "a PCCS cache folder goes with --pccs (an offline "
                        "folder is --collateral DIR)");
    if (!o->collateral && !o->pccs_url && !o->trust_sim)
        return cai_fail(CAI_ERR_INVALID_ARG, "nothing to verify evidence with: give --collateral "
                        "FILE or --pccs URL (Intel TDX), or --trust-sim DIR (the simulated TEE)");
    attest_trust *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return CAI_ERR_NOMEM;
    buf_init(&t->sim_root, 1 << 16);
    cai_status st = CAI_OK;
    if (o->collateral)
        st = load_collateral(o->collateral, &t->tdx, &t->provider);
    if (st == CAI_OK && o->pccs_url) {
        pccs_config pc = {.base_url = o->pccs_url, .cache_dir = o->pccs_cache,
                          .insecure_http = o->pccs_insecure_http};
        if ((st = pccs_new(&pc, &t->provider)) == CAI_OK && o->pccs_insecure_http)
            log_warn("INSECURE: plain HTTP to the PCCS (--pccs-insecure-http; the collateral is "
                     "still verified, its freshness only as good as the network)");
    }
    int sim_own = !o->sim_uses_given_collateral || (!o->collateral && !o->pccs_url);
    if (st == CAI_OK && o->trust_sim) {
        char p[4096];
        snprintf(p, sizeof(p), "%s/%s", o->trust_sim, SIM_ROOT_CERT);
        if ((st = file_read_all(p, 1 << 16, &t->sim_root)) == CAI_OK &&
            (st = buf_terminate(&t->sim_root)) == CAI_OK &&
            (!sim_own || (st = tdx_collateral_load(o->trust_sim, &t->sim)) == CAI_OK)) {
            t->v.sim_root_pem = (const char *)t->sim_root.data;
            /* not sim_own: the given collateral, or (NULL) the provider's */
            t->v.sim_collateral = sim_own ? t->sim : t->tdx;
            log_warn("INSECURE: --trust-sim accepts the simulated TEE of %s, whose keys anyone "
                     "with that folder has", o->trust_sim);
        }
    }
    if (st != CAI_OK) {
        attest_trust_free(t);
        return st;
    }
    t->v.tdx_collateral = t->tdx;
    t->v.collateral_provider = t->provider;
    *out = t;
    return CAI_OK;
}

const attest_verifier *attest_trust_verifier(const attest_trust *t) { return &t->v; }

void attest_trust_free(attest_trust *t) {
    if (t == NULL)
        return;
    tdx_collateral_free(t->tdx);
    tdx_collateral_free(t->sim);
    pccs_free(t->provider);
    buf_free(&t->sim_root);
    free(t);
}
