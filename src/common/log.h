/* log.h - leveled logging to stderr.
 *
 * Rule: never pass a secret (key, plaintext, token) to these functions; log
 * identifiers, sizes and digests instead. */
#ifndef CAI_COMMON_LOG_H
#define CAI_COMMON_LOG_H

typedef enum {
    LOG_LEVEL_ERROR = 0,
    LOG_LEVEL_WARN = 1,
    LOG_LEVEL_INFO = 2,
    LOG_LEVEL_DEBUG = 3,
} log_level;

/* log_set_level sets the most verbose level printed (default: INFO). */
void log_set_level(log_level level);
log_level log_get_level(void);

/* log_parse_level maps "error"/"warn"/"info"/"debug" to a level; returns 0 on
 * success and -1 for an unknown name. */
int log_parse_level(const char *name, log_level *out);

/* log_msg prints one line "TIME LEVEL message" when |level| is enabled. */
void log_msg(log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)

#endif
