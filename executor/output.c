/* Bounded capture of what a task prints, and masking of its secrets. */
#include <stdlib.h>
#include <string.h>

#include "exec.h"
#include "wire.h"
#include "xalloc.h"

void tail_init(struct tail *t, size_t keep)
{
	t->keep = keep ? keep : 1;
	t->cap = 2 * t->keep;
	t->data = xmalloc(t->cap);
	t->len = 0;
	t->dropped = 0;
}

void tail_append(struct tail *t, const char *data, size_t n)
{
	if (n >= t->keep) {
		t->dropped += t->len + (n - t->keep);
		memcpy(t->data, data + (n - t->keep), t->keep);
		t->len = t->keep;
		return;
	}
	if (t->len + n > t->cap) {
		/* keep the last keep - n old bytes, then add n: amortised O(1) */
		size_t excess = t->len + n - t->keep;
		memmove(t->data, t->data + excess, t->len - excess);
		t->len -= excess;
		t->dropped += excess;
	}
	memcpy(t->data + t->len, data, n);
	t->len += n;
}

void tail_release(struct tail *t)
{
	free(t->data);
	t->data = NULL;
	t->len = t->cap = 0;
}

void secrets_release(struct secrets *s)
{
	for (size_t i = 0; i < s->n; i++) {
		/* wipe before freeing: secrets should not linger in freed memory */
		explicit_bzero(s->v[i], strlen(s->v[i]));
		free(s->v[i]);
	}
	free(s->v);
	s->v = NULL;
	s->n = 0;
	s->longest = 0;
}

char *secrets_mask(const struct secrets *used, const char *s, size_t n, size_t *outlen)
{
	char *cur = xmalloc(n + 1);
	memcpy(cur, s, n);
	cur[n] = '\0';
	size_t len = n;
	for (size_t k = 0; used && k < used->n; k++) {
		const char *sec = used->v[k];
		size_t sl = strlen(sec);
		if (sl == 0)
			continue;
		struct buf b;
		buf_init(&b, 0);
		size_t i = 0;
		while (i < len) {
			const char *hit = memmem(cur + i, len - i, sec, sl);
			if (!hit) {
				(void)!buf_append(&b, cur + i, len - i);
				break;
			}
			(void)!buf_append(&b, cur + i, (size_t)(hit - (cur + i)));
			(void)!buf_puts(&b, "***");
			i = (size_t)(hit - cur) + sl;
		}
		if (!b.data)
			(void)!buf_puts(&b, "");
		len = b.len;
		free(cur);
		cur = buf_detach(&b);
	}
	*outlen = len;
	return cur;
}

/* Moves p forward past UTF-8 continuation bytes so a cut never splits a character. */
static size_t char_start(const char *s, size_t len, size_t i)
{
	size_t k = 0;
	while (i < len && k < 3 && ((unsigned char)s[i] & 0xc0) == 0x80) {
		i++;
		k++;
	}
	return i;
}

char *output_from_tail(const struct tail *t, size_t max, const struct secrets *used)
{
	size_t mlen;
	char *masked = secrets_mask(used, t->data ? t->data : "", t->len, &mlen);
	char *res;
	if (t->dropped == 0 && mlen <= max) {
		res = wire_text(masked, mlen);
		goto out;
	}
	char marker[80];
	/* the marker counts as output too: keep the total within max */
	size_t room = max > 64 ? max - 64 : max;
	size_t start = mlen > room ? mlen - room : 0;
	start = char_start(masked, mlen, start);
	snprintf(marker, sizeof marker, "[... %llu bytes truncated ...]\n",
	         (unsigned long long)(t->dropped + start));
	struct buf b;
	buf_init(&b, 0);
	(void)!buf_puts(&b, marker);
	(void)!buf_append(&b, masked + start, mlen - start);
	res = wire_text(b.data, b.len);
	buf_release(&b);
out:
	free(masked);
	return res;
}

char *output_from_head(const char *data, size_t len, uint64_t dropped, size_t max,
                       const struct secrets *used)
{
	size_t mlen;
	char *masked = secrets_mask(used, data ? data : "", len, &mlen);
	if (mlen > max) {
		/* the capture keeps a margin so a secret at the edge is masked whole */
		size_t cut = max;
		while (cut > 0 && ((unsigned char)masked[cut] & 0xc0) == 0x80)
			cut--;
		dropped += mlen - cut;
		mlen = cut;
	}
	struct buf b;
	buf_init(&b, 0);
	(void)!buf_append(&b, masked, mlen);
	if (dropped)
		(void)!buf_printf(&b, "\n[... %llu bytes truncated ...]",
		                  (unsigned long long)dropped);
	char *res = wire_text(b.data ? b.data : "", b.len);
	buf_release(&b);
	free(masked);
	return res;
}
