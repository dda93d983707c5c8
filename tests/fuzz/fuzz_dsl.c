/* libFuzzer target: any bytes through the workflow compiler. It must return
 * a DAG or a list of errors, never crash, leak or hang. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dsl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dsl_result r;
	if (dsl_compile((const char *)data, size, "fuzz.yaml", &r) == 0) {
		if (!r.dag || !r.canonical || strlen(r.hash) != 64)
			abort();
	} else {
		if (r.dag || r.nerrors == 0)
			abort();
		for (size_t i = 0; i < r.nerrors; i++)
			free(dsl_error_format(&r.errors[i]));
	}
	dsl_result_release(&r);
	return 0;
}
