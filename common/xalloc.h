/* Allocation wrappers: the one out-of-memory policy of wf.
 * Each aborts the process with a message when memory runs out, so callers
 * never check for NULL. Everything else fallible returns an error. */
#ifndef WF_XALLOC_H
#define WF_XALLOC_H
#include <stdarg.h>
#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* Returns a newly allocated formatted string; the caller frees it. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *xvasprintf(const char *fmt, va_list ap);

#endif
