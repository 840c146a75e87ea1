/* test.h - the unit-test harness: each test binary runs its cases and prints
 * one line per case, "PASS name", "FAIL name" (after the failed checks) or
 * "SKIP name: why"; tests/run.sh counts them.
 *
 *   static void test_round_trip(void) { CHECK(x == 1); CHECK_OK(f()); }
 *   int main(void) { RUN(test_round_trip); return test_summary(); }
 *
 * A case that cannot run here (its data is absent) calls SKIP("why") and
 * returns: it is reported and counted as skipped, never as passed. A case
 * that failed a check before skipping still fails. */
#ifndef CAI_TEST_H
#define CAI_TEST_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/status.h"

/* test_mapping finds the mapping of this process that holds |p| in
 * /proc/self/smaps: its permissions ("r--p", ...) into |perms| and its
 * VmFlags (" rd mr mw me dd hg ...") into |flags|, |cap| bytes; both ""
 * where no mapping holds p. */
static inline void test_mapping(const void *p, char perms[8], char *flags, size_t cap) {
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[512], pm[8];
    int in = 0;
    perms[0] = flags[0] = '\0';
    while (f && fgets(line, sizeof(line), f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx %7s", &lo, &hi, pm) == 3 && strchr(line, '-') < strchr(line, ' ')) {
            if (in)
                break; /* the next mapping */
            in = (uintptr_t)p >= lo && (uintptr_t)p < hi;
            if (in)
                memcpy(perms, pm, sizeof(pm));
        } else if (in && strncmp(line, "VmFlags:", 8) == 0) {
            snprintf(flags, cap, "%.200s", line + 8);
        }
    }
    if (f)
        fclose(f);
}

static int test_failed_cases;
static int test_case_failed;
static int test_case_skipped;
static char test_skip_why[256];

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            if (!test_case_failed)                                             \
                printf("  %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            test_case_failed = 1;                                              \
        }                                                                      \
    } while (0)

#define CHECK_OK(expr)                                                         \
    do {                                                                       \
        cai_status st_ = (expr);                                               \
        if (st_ != CAI_OK) {                                                   \
            if (!test_case_failed)                                             \
                printf("  %s:%d: %s -> %s\n", __FILE__, __LINE__, #expr,       \
                       cai_errmsg(st_));                                       \
            test_case_failed = 1;                                              \
        }                                                                      \
    } while (0)

#define CHECK_ST(expr, want)                                                   \
    do {                                                                       \
        cai_status st_ = (expr);                                               \
        if (st_ != (want)) {                                                   \
            if (!test_case_failed)                                             \
                printf("  %s:%d: %s -> %d (%s), want %s\n", __FILE__, __LINE__,\
                       #expr, st_, cai_errmsg(st_), #want);                    \
            test_case_failed = 1;                                              \
        }                                                                      \
    } while (0)

#define RUN(fn)                                                                \
    do {                                                                       \
        test_case_failed = 0;                                                  \
        test_case_skipped = 0;                                                 \
        fn();                                                                  \
        if (test_case_failed)                                                  \
            printf("FAIL %s\n", #fn);                                          \
        else if (test_case_skipped)                                            \
            printf("SKIP %s: %s\n", #fn, test_skip_why);                       \
        else                                                                   \
            printf("PASS %s\n", #fn);                                          \
        fflush(stdout);                                                        \
        test_failed_cases += test_case_failed;                                 \
    } while (0)

/* SKIP marks the running case as skipped, with a printf-style reason (the
 * first one given is kept); the caller returns. */
#define SKIP(...) test_skip(__VA_ARGS__)

__attribute__((format(printf, 1, 2))) static inline void test_skip(const char *fmt, ...) {
    if (test_case_skipped)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(test_skip_why, sizeof(test_skip_why), fmt, ap);
    va_end(ap);
    test_case_skipped = 1;
}

/* test_shared_data returns the team's shared test data folder
 * ($CAI_SHARED_DATA, else ../shared/data from the repository root), or NULL
 * when it is absent: tests that need it then SKIP. */
static inline const char *test_shared_data(void) {
    const char *d = getenv("CAI_SHARED_DATA");
    if (d == NULL || d[0] == '\0')
        d = "../shared/data";
    FILE *f;
    char probe[4096];
    snprintf(probe, sizeof(probe), "%s/README.md", d);
    if ((f = fopen(probe, "r")) == NULL)
        return NULL;
    fclose(f);
    return d;
}

static inline int test_summary(void) { return test_failed_cases ? 1 : 0; }

#endif
