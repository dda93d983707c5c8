/* A growable byte buffer with an optional upper bound (after curl's dynbuf).
 * The contents are always NUL-terminated. buf_init/buf_release own only the
 * contents; the struct itself is the caller's. */
#ifndef WF_BUF_H
#define WF_BUF_H
#include <stdarg.h>
#include <stddef.h>

struct buf {
	char *data;
	size_t len;
	size_t cap;
	size_t max; /* 0 = unbounded */
};

void buf_init(struct buf *b, size_t max);
void buf_release(struct buf *b);
void buf_reset(struct buf *b);
/* Appends n bytes. Returns 0, or -1 (nothing appended) past the bound. */
int buf_append(struct buf *b, const void *data, size_t n) __attribute__((warn_unused_result));
int buf_puts(struct buf *b, const char *s) __attribute__((warn_unused_result));
/* Appends v in decimal: what buf_printf(b, "%lld", v) appends, without
 * printf (the batch statements' array literals hold thousands). */
int buf_put_ll(struct buf *b, long long v) __attribute__((warn_unused_result));
int buf_printf(struct buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), warn_unused_result));
/* Hands the contents to the caller (free() it) and empties the buffer. */
char *buf_detach(struct buf *b);

#endif
