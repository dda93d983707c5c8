/* API authentication: bearer tokens hashed with SHA-256 and looked up in
 * api_tokens, behind a small thread-safe cache; roles viewer < operator <
 * admin. */
#ifndef WF_AUTH_H
#define WF_AUTH_H
#include <stddef.h>
#include <stdint.h>

#include "store.h"

enum auth_role { AUTH_NONE = 0, AUTH_VIEWER = 1, AUTH_OPERATOR = 2, AUTH_ADMIN = 3 };

struct auth_ident {
	char name[128]; /* the token's name, "" when anonymous */
	enum auth_role role;
	char ns[72]; /* the namespace the token is scoped to, "" = every one */
};

enum auth_result {
	AUTH_OK = 0,
	AUTH_MISSING = 1,     /* no Authorization header */
	AUTH_BAD = 2,         /* malformed, unknown or revoked token */
	AUTH_UNAVAILABLE = 3, /* the database could not be asked */
};

struct auth;
/* ttl_ms: how long a lookup (found or not) is cached. */
struct auth *auth_new(int64_t ttl_ms);
void auth_free(struct auth *a);

/* Checks an Authorization header value (may be NULL); on AUTH_OK fills who.
 * Thread-safe; asks the database (through s) only on a cache miss, and
 * updates last_used_at at most once a minute per token. */
enum auth_result auth_check(struct auth *a, struct store *s, const char *header,
                            struct auth_ident *who) __attribute__((warn_unused_result));

/* Forgets every cached lookup, so a token revoked or created through this
 * process takes effect at once (other engines: within the TTL). */
void auth_invalidate(struct auth *a);

/* Hex SHA-256 of a token into out (65 bytes). */
void auth_hash_token(const char *token, char out[65]);

/* "viewer" / "operator" / "admin" / "none". */
const char *auth_role_name(enum auth_role r);
/* Parses a role name; AUTH_NONE when unknown. */
enum auth_role auth_role_parse(const char *s);

#endif
