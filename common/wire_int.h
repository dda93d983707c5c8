/* What common/wire.c and common/wire_json.c share. */
#ifndef WF_WIRE_INT_H
#define WF_WIRE_INT_H
#include <stddef.h>

/* Length of the valid UTF-8 sequence at s (n bytes left, n >= 1): 1 for
 * ASCII other than NUL, 2 to 4 for a character that is neither overlong,
 * a surrogate nor above U+10FFFF (jansson's rules), else 0. */
size_t wire__utf8_seq(const unsigned char *s, size_t n);

#endif
