/* One logging module for all three programs: levels, logfmt or JSON lines,
 * always to stderr. Messages are a short text plus key=value fields:
 *   log_info("run started", "run_id=%lld workflow=%s", id, name);
 * The field string is a printf format of space-separated key=value pairs. */
#ifndef WF_LOG_H
#define WF_LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* prog names the program in every line. Reads WF_LOG_LEVEL (debug|info|
 * warn|error) and WF_LOG_FORMAT (logfmt|json) unless set explicitly later. */
void log_init(const char *prog);
void log_set_level(enum log_level level);
/* Returns 0, or -1 when name is not a level. */
int log_set_level_name(const char *name) __attribute__((warn_unused_result));
void log_set_json(int json);
int log_enabled(enum log_level level);

void log_write(enum log_level level, const char *msg, const char *fields_fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_debug(msg, ...) log_write(LOG_DEBUG, msg, __VA_ARGS__)
#define log_info(msg, ...)  log_write(LOG_INFO, msg, __VA_ARGS__)
#define log_warn(msg, ...)  log_write(LOG_WARN, msg, __VA_ARGS__)
#define log_error(msg, ...) log_write(LOG_ERROR, msg, __VA_ARGS__)

#endif
