/* libFuzzer target: any bytes → wire_decode; a frame that decodes must
 * encode again and decode to an equal frame. The plain-JSON paths under
 * them must agree with jansson: what wire_load_plain takes, json_loadb
 * reads the same; what wire_dump_plain writes, json_dumps writes. Needs
 * only common/. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	json_t *msg = NULL;
	json_t *fast = wire_load_plain((const char *)data, size);
	json_t *slow = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	if (fast && (!slow || !json_equal(fast, slow)))
		abort();
	if (slow) {
		char *a = wire_dump_plain(slow), *b = json_dumps(slow, JSON_COMPACT);
		if (a && (!b || strcmp(a, b) != 0))
			abort();
		free(a);
		free(b);
	}
	json_decref(fast);
	json_decref(slow);
	if (wire_decode((const char *)data, size, &msg, err, sizeof err) != 0) {
		if (msg || !err[0])
			abort(); /* a failure sets no frame and always says why */
		return 0;
	}
	char *text = wire_encode(msg);
	if (!text)
		abort();
	json_t *again = NULL;
	if (wire_decode(text, strlen(text), &again, err, sizeof err) != 0 ||
	    !json_equal(msg, again))
		abort();
	char *clean = wire_text((const char *)data, size);
	json_t *s = json_string(clean);
	if (!s)
		abort(); /* wire_text always yields valid UTF-8 */
	json_decref(s);
	free(clean);
	json_decref(again);
	free(text);
	json_decref(msg);
	return 0;
}
