/* Token buckets for the API's rate limit (api_int.h): one bucket per key
 * (a token's name or a client address) in a fixed table; when the table is
 * full the bucket idle longest is reused, which at worst gives a client a
 * fresh burst. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "api_int.h"
#include "util.h"
#include "xalloc.h"

#define RATE_SLOTS 1024
#define KEY_MAX    160

struct bucket {
	char key[KEY_MAX]; /* "" = free */
	double tokens;
	int64_t last_ms; /* monotonic: the last refill */
};

struct api_rate {
	pthread_mutex_t lock;
	double per_ms;
	int per_s, burst;
	struct bucket b[RATE_SLOTS];
};

struct api_rate *api_rate_new(int per_s, int burst)
{
	struct api_rate *r = xcalloc(1, sizeof *r);
	pthread_mutex_init(&r->lock, NULL);
	r->per_s = per_s > 0 ? per_s : 1;
	r->burst = burst > 0 ? burst : 1;
	r->per_ms = r->per_s / 1000.0;
	return r;
}

void api_rate_free(struct api_rate *r)
{
	if (!r)
		return;
	pthread_mutex_destroy(&r->lock);
	free(r);
}

int api_rate_per_s(const struct api_rate *r)
{
	return r->per_s;
}

int api_rate_burst(const struct api_rate *r)
{
	return r->burst;
}

/* FNV-1a: where to start looking for key. */
static size_t slot_of(const char *key)
{
	uint64_t h = 1469598103934665603ull;
	for (const unsigned char *p = (const unsigned char *)key; *p; p++)
		h = (h ^ *p) * 1099511628211ull;
	return (size_t)(h % RATE_SLOTS);
}

int64_t api_rate_take(struct api_rate *r, const char *key)
{
	int64_t now = mono_ms(), wait = 0;
	struct bucket *hit = NULL, *oldest = NULL;
	size_t start = slot_of(key);

	pthread_mutex_lock(&r->lock);
	/* Probe a short run of slots: the key, else a free one, else the
	 * idlest of the run. */
	for (size_t i = 0; i < 16; i++) {
		struct bucket *b = &r->b[(start + i) % RATE_SLOTS];
		if (strncmp(b->key, key, KEY_MAX - 1) == 0 && b->key[0]) {
			hit = b;
			break;
		}
		if (!b->key[0]) {
			if (!oldest || oldest->key[0])
				oldest = b;
		} else if (!oldest || (oldest->key[0] && b->last_ms < oldest->last_ms)) {
			oldest = b;
		}
	}
	if (!hit) {
		hit = oldest;
		snprintf(hit->key, sizeof hit->key, "%s", key);
		hit->tokens = r->burst;
		hit->last_ms = now;
	}
	hit->tokens += (double)(now - hit->last_ms) * r->per_ms;
	if (hit->tokens > r->burst)
		hit->tokens = r->burst;
	hit->last_ms = now;
	if (hit->tokens >= 1.0)
		hit->tokens -= 1.0;
	else
		wait = (int64_t)((1.0 - hit->tokens) / r->per_ms) + 1;
	pthread_mutex_unlock(&r->lock);
	return wait;
}
