/* test.h - the unit-test harness: each test binary runs its cases and prints
 * one line per case, "PASS name" or "FAIL name: why"; tests/run counts them.
 *
 *   static void test_round_trip(void) { CHECK(x == 1); CHECK_OK(f()); }
 *   int main(void) { RUN(test_round_trip); return test_summary(); }
 */
#ifndef CAI_TEST_H
#define CAI_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/status.h"

static int test_failed_cases;
static int test_case_failed;

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
        fn();                                                                  \
        printf("%s %s\n", test_case_failed ? "FAIL" : "PASS", #fn);            \
        fflush(stdout);                                                        \
        test_failed_cases += test_case_failed;                                 \
    } while (0)

/* test_shared_data returns the team's shared test data folder
 * ($CAI_SHARED_DATA, else ../shared/data from the repository root), or NULL
 * when it is absent: tests that need it then print SKIP and pass. */
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

#define SKIP(name, why) printf("SKIP %s: %s\n", name, why)

static inline int test_summary(void) { return test_failed_cases ? 1 : 0; }

#endif
