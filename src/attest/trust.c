/* trust.c - a verifier's trust roots and collateral from command options. */
#include "attest/trust.h"

#include <stdio.h>
#include <stdlib.h>

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

cai_status attest_trust_new(const attest_trust_opts *o, attest_trust **out) {
    *out = NULL;
    if (o->collateral && o->pccs_url)
        return cai_fail(CAI_ERR_INVALID_ARG, "--collateral and --pccs exclude each other");
    if (!o->collateral && !o->pccs_url && !o->trust_sim)
        return cai_fail(CAI_ERR_INVALID_ARG, "nothing to verify evidence with: give --collateral "
                        "FILE or --pccs URL (Intel TDX), or --trust-sim DIR (the simulated TEE)");
    attest_trust *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return CAI_ERR_NOMEM;
    buf_init(&t->sim_root, 1 << 16);
    cai_status st = CAI_OK;
    if (o->collateral && (st = tdx_collateral_load(o->collateral, &t->tdx)) == CAI_OK)
        t->v.tdx_collateral = t->tdx;
    if (st == CAI_OK && o->pccs_url) {
        pccs_config pc = {.base_url = o->pccs_url, .cache_dir = o->pccs_cache,
                          .insecure_http = o->pccs_insecure_http};
        if ((st = pccs_new(&pc, &t->provider)) == CAI_OK)
            t->v.collateral_provider = t->provider;
    }
    if (st == CAI_OK && o->trust_sim) {
        char p[4096];
        snprintf(p, sizeof(p), "%s/%s", o->trust_sim, SIM_ROOT_CERT);
        if ((st = file_read_all(p, 1 << 16, &t->sim_root)) == CAI_OK &&
            (st = buf_terminate(&t->sim_root)) == CAI_OK &&
            (st = tdx_collateral_load(o->trust_sim, &t->sim)) == CAI_OK) {
            t->v.sim_root_pem = (const char *)t->sim_root.data;
            t->v.sim_collateral = t->sim;
            log_warn("INSECURE: --trust-sim accepts the simulated TEE of %s, whose keys anyone "
                     "with that folder has", o->trust_sim);
        }
    }
    if (st != CAI_OK) {
        attest_trust_free(t);
        return st;
    }
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
