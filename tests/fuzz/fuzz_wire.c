/* libFuzzer target: any bytes → wire_decode; a frame that decodes must
 * encode again and decode to an equal frame. Needs only common/. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	json_t *msg = NULL;
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
