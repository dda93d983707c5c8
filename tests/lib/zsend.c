/* zsend: a tiny ZeroMQ PUSH client for the security tests. Sends each FILE
 * as one frame to ENDPOINT, plaintext or as a CURVE client.
 *   zsend [--public Z85 --secret Z85 --server-key Z85] [--linger-ms N] ENDPOINT FILE...
 * Built by the tests: cc -o zsend tests/lib/zsend.c -lzmq */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *data = NULL;
	size_t cap = 0, n = 0;
	if (!f)
		return NULL;
	for (;;) {
		if (n == cap) {
			cap = cap ? cap * 2 : 65536;
			char *d = realloc(data, cap);
			if (!d) {
				free(data);
				fclose(f);
				return NULL;
			}
			data = d;
		}
		size_t r = fread(data + n, 1, cap - n, f);
		n += r;
		if (r == 0)
			break;
	}
	fclose(f);
	*len = n;
	return data;
}

int main(int argc, char **argv)
{
	const char *pub = NULL, *sec = NULL, *server = NULL;
	int linger = 2000, i = 1, rc = 0;
	for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
		if (i + 1 >= argc)
			break;
		if (strcmp(argv[i], "--public") == 0)
			pub = argv[++i];
		else if (strcmp(argv[i], "--secret") == 0)
			sec = argv[++i];
		else if (strcmp(argv[i], "--server-key") == 0)
			server = argv[++i];
		else if (strcmp(argv[i], "--linger-ms") == 0)
			linger = atoi(argv[++i]);
		else {
			fprintf(stderr, "zsend: unknown option %s\n", argv[i]);
			return 2;
		}
	}
	if (i >= argc) {
		fprintf(stderr, "usage: zsend [options] ENDPOINT FILE...\n");
		return 2;
	}
	const char *endpoint = argv[i++];
	void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, ZMQ_PUSH);
	zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
	if (server && pub && sec) {
		zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, server, 40);
		zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, pub, 40);
		zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, sec, 40);
	}
	if (zmq_connect(s, endpoint) != 0) {
		fprintf(stderr, "zsend: connect %s: %s\n", endpoint, zmq_strerror(zmq_errno()));
		return 1;
	}
	for (; i < argc; i++) {
		size_t len = 0;
		char *data = slurp(argv[i], &len);
		if (!data) {
			fprintf(stderr, "zsend: cannot read %s\n", argv[i]);
			rc = 1;
			continue;
		}
		if (zmq_send(s, data, len, 0) < 0) {
			fprintf(stderr, "zsend: send: %s\n", zmq_strerror(zmq_errno()));
			rc = 1;
		}
		free(data);
	}
	zmq_close(s);
	zmq_ctx_term(ctx);
	return rc;
}
