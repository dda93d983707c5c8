/* libFuzzer target: cron expressions. Parses the input; when it parses,
 * asks for a few next times in a zone with DST, a half-hour zone and UTC
 * under every DST policy, and describes it. Seeds: tests/fuzz/corpus/cron/. */
#include "cron.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *zones[] = {"Europe/Berlin", "Australia/Sydney", "Asia/Kathmandu", NULL};
	struct cron_expr *e = NULL;
	char err[256];
	char *s;

	if (size > 4096)
		return 0;
	s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (cron_parse(s, "fuzz", &e, err, sizeof(err)) == 0) {
		/* a start near a DST change, varied by the input */
		int64_t t = 1774742400 + (int64_t)(size * 7919 % 400) * 86400;
		for (int z = 0; z < 4; z++) {
			int64_t at = t;
			for (int i = 0; i < 4; i++) {
				int64_t n;
				if (cron_next(e, zones[z], (enum cron_dst_gap)(i % 3),
				              (enum cron_dst_repeat)(i % 2), at, &n) != 0)
					break;
				if (n <= at)
					abort(); /* must move forward */
				at = n;
			}
		}
		char *d = cron_describe(e);
		free(d);
		cron_free(e);
	} else if (err[0] == '\0') {
		abort(); /* an error always carries a message */
	}
	free(s);
	return 0;
}
