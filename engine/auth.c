#include "auth.h"

#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "util.h"
#include "xalloc.h"

#define CACHE_SIZE 256
#define MAX_TOKEN  512

struct entry {
	char hash[65]; /* "" = free slot */
	int found;
	struct auth_ident who;
	int64_t expires_ms; /* monotonic */
};

struct auth {
	pthread_mutex_t lock;
	int64_t ttl_ms;
	struct entry cache[CACHE_SIZE];
};

struct auth *auth_new(int64_t ttl_ms)
{
	if (sodium_init() < 0)
		log_warn("libsodium failed to initialise", "%s", "");
	struct auth *a = xcalloc(1, sizeof *a);
	pthread_mutex_init(&a->lock, NULL);
	a->ttl_ms = ttl_ms;
	return a;
}

void auth_free(struct auth *a)
{
	if (!a)
		return;
	pthread_mutex_destroy(&a->lock);
	free(a);
}

void auth_invalidate(struct auth *a)
{
	pthread_mutex_lock(&a->lock);
	memset(a->cache, 0, sizeof a->cache);
	pthread_mutex_unlock(&a->lock);
}

void auth_hash_token(const char *token, char out[65])
{
	unsigned char digest[crypto_hash_sha256_BYTES];
	crypto_hash_sha256(digest, (const unsigned char *)token, strlen(token));
	hex_encode(digest, sizeof digest, out);
}

const char *auth_role_name(enum auth_role r)
{
	switch (r) {
	case AUTH_VIEWER:
		return "viewer";
	case AUTH_OPERATOR:
		return "operator";
	case AUTH_ADMIN:
		return "admin";
	default:
		return "none";
	}
}

enum auth_role auth_role_parse(const char *s)
{
	if (!s)
		return AUTH_NONE;
	if (strcmp(s, "viewer") == 0)
		return AUTH_VIEWER;
	if (strcmp(s, "operator") == 0)
		return AUTH_OPERATOR;
	if (strcmp(s, "admin") == 0)
		return AUTH_ADMIN;
	return AUTH_NONE;
}

/* Extracts the token of "Bearer <token>" into out. Returns 0 or -1. */
static int bearer_token(const char *header, char *out, size_t outlen)
{
	while (*header == ' ')
		header++;
	if (strncasecmp(header, "Bearer ", 7) != 0)
		return -1;
	const char *t = header + 7;
	while (*t == ' ')
		t++;
	size_t n = 0;
	while (t[n] && t[n] != ' ' && t[n] != '\t')
		n++;
	const char *rest = t + n;
	while (*rest == ' ' || *rest == '\t')
		rest++;
	if (n == 0 || n >= outlen || *rest)
		return -1;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)t[i] < 0x21 || (unsigned char)t[i] > 0x7e)
			return -1;
	memcpy(out, t, n);
	out[n] = '\0';
	return 0;
}

/* Looks hash up in the cache. Returns 1 when a live entry was found. */
static int cache_get(struct auth *a, const char *hash, int *found, struct auth_ident *who)
{
	int hit = 0;
	int64_t now = mono_ms();
	pthread_mutex_lock(&a->lock);
	for (int i = 0; i < CACHE_SIZE; i++) {
		struct entry *e = &a->cache[i];
		if (e->hash[0] && e->expires_ms > now && strcmp(e->hash, hash) == 0) {
			*found = e->found;
			*who = e->who;
			hit = 1;
			break;
		}
	}
	pthread_mutex_unlock(&a->lock);
	return hit;
}

static void cache_put(struct auth *a, const char *hash, int found, const struct auth_ident *who)
{
	int64_t now = mono_ms();
	pthread_mutex_lock(&a->lock);
	struct entry *victim = &a->cache[0];
	for (int i = 0; i < CACHE_SIZE; i++) {
		struct entry *e = &a->cache[i];
		if (!e->hash[0] || e->expires_ms <= now || strcmp(e->hash, hash) == 0) {
			victim = e;
			break;
		}
		if (e->expires_ms < victim->expires_ms)
			victim = e;
	}
	memcpy(victim->hash, hash, sizeof victim->hash);
	victim->found = found;
	victim->who = *who;
	victim->expires_ms = now + a->ttl_ms;
	pthread_mutex_unlock(&a->lock);
}

/* One round trip: the token's name and role, and last_used_at refreshed when
 * it is older than a minute (the data-modifying CTE runs regardless). */
static const char lookup_sql[] =
    "WITH t AS (SELECT id, name, role, namespace, last_used_at FROM api_tokens"
    "           WHERE hash = $1 AND revoked_at IS NULL),"
    " u AS (UPDATE api_tokens SET last_used_at = now() FROM t"
    "       WHERE api_tokens.id = t.id AND (t.last_used_at IS NULL"
    "             OR t.last_used_at < now() - interval '1 minute') RETURNING 1)"
    " SELECT name, role, coalesce(namespace, '') FROM t";

enum auth_result auth_check(struct auth *a, struct store *s, const char *header,
                            struct auth_ident *who)
{
	enum auth_result rc = AUTH_BAD;
	char token[MAX_TOKEN], hash[65];
	struct auth_ident id = {.role = AUTH_NONE};
	int found = 0;
	PGresult *r = NULL;

	memset(who, 0, sizeof *who);
	if (!header || !*header) {
		rc = AUTH_MISSING;
		goto out;
	}
	if (bearer_token(header, token, sizeof token) != 0)
		goto out;
	auth_hash_token(token, hash);
	if (!cache_get(a, hash, &found, &id)) {
		const char *p[1] = {hash};
		r = store_execp(s, "auth_lookup", lookup_sql, 1, p);
		if (!r) {
			rc = AUTH_UNAVAILABLE;
			goto out;
		}
		found = PQntuples(r) == 1;
		if (found) {
			snprintf(id.name, sizeof id.name, "%s", PQgetvalue(r, 0, 0));
			id.role = auth_role_parse(PQgetvalue(r, 0, 1));
			snprintf(id.ns, sizeof id.ns, "%s", PQgetvalue(r, 0, 2));
		}
		cache_put(a, hash, found, &id);
	}
	if (!found || id.role == AUTH_NONE)
		goto out;
	*who = id;
	rc = AUTH_OK;
out:
	PQclear(r);
	sodium_memzero(token, sizeof token);
	return rc;
}
