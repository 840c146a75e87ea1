/* clock.h - the monotonic clock in seconds, for timings and rate limits. */
#ifndef CAI_COMMON_CLOCK_H
#define CAI_COMMON_CLOCK_H

/* clock_now returns CLOCK_MONOTONIC in seconds: differences are elapsed
 * time, unaffected by changes to the wall clock. */
double clock_now(void);

#endif
