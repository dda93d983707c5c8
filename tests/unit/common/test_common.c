/* Unit tests for common/: buf, xalloc, util, log. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "log.h"
#include "util.h"
#include "xalloc.h"

Test(buf, appends_and_terminates)
{
	struct buf b;
	buf_init(&b, 0);
	cr_assert_eq(buf_puts(&b, "hello"), 0);
	cr_assert_eq(buf_printf(&b, " %d", 42), 0);
	cr_assert_str_eq(b.data, "hello 42");
	cr_assert_eq(b.len, 8);
	buf_release(&b);
}

Test(buf, printf_longer_than_its_stack_buffer)
{
	struct buf b;
	char big[1001];
	memset(big, 'x', 1000);
	big[1000] = '\0';
	buf_init(&b, 0);
	cr_assert_eq(buf_printf(&b, "<%s>%d", big, 7), 0);
	cr_assert_eq(b.len, 1003);
	cr_assert_eq(b.data[0], '<');
	cr_assert_str_eq(b.data + 1001, ">7");
	buf_release(&b);
	/* a bounded buffer refuses a long piece whole */
	buf_init(&b, 100);
	cr_assert_eq(buf_printf(&b, "%s", big), -1);
	cr_assert_eq(b.len, 0);
	cr_assert_eq(buf_printf(&b, "%d", 12345), 0);
	cr_assert_str_eq(b.data, "12345");
	buf_release(&b);
}

Test(buf, put_ll_writes_what_printf_writes)
{
	const long long v[] = {0, 1, -1, 9, 10, -10, 1234567890123LL, LLONG_MAX, LLONG_MIN};
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		struct buf b;
		char want[32];
		buf_init(&b, 0);
		cr_assert_eq(buf_put_ll(&b, v[i]), 0);
		snprintf(want, sizeof want, "%lld", v[i]);
		cr_assert_str_eq(b.data, want);
		buf_release(&b);
	}
	struct buf small;
	buf_init(&small, 3);
	cr_assert_eq(buf_put_ll(&small, 1234), -1); /* past the bound: nothing */
	cr_assert_eq(small.len, 0);
	buf_release(&small);
}

Test(buf, refuses_past_bound_and_keeps_contents)
{
	struct buf b;
	buf_init(&b, 8);
	cr_assert_eq(buf_puts(&b, "12345"), 0);
	cr_assert_eq(buf_puts(&b, "6789"), -1);
	cr_assert_str_eq(b.data, "12345");
	cr_assert_eq(buf_puts(&b, "678"), 0);
	cr_assert_str_eq(b.data, "12345678");
	char *s = buf_detach(&b);
	cr_assert_str_eq(s, "12345678");
	cr_assert_eq(b.len, 0);
	free(s);
}

Test(xalloc, asprintf_formats)
{
	char *s = xasprintf("%s-%05d", "run", 42);
	cr_assert_str_eq(s, "run-00042");
	free(s);
	char *d = xstrndup("abcdef", 3);
	cr_assert_str_eq(d, "abc");
	free(d);
}

Test(util, parse_int64_bounds)
{
	int64_t v;
	cr_assert_eq(parse_int64("42", 0, 100, &v), 0);
	cr_assert_eq(v, 42);
	cr_assert_eq(parse_int64("101", 0, 100, &v), -1);
	cr_assert_eq(parse_int64("4x", 0, 100, &v), -1);
	cr_assert_eq(parse_int64("", 0, 100, &v), -1);
	cr_assert_eq(parse_int64("-5", -10, 10, &v), 0);
	cr_assert_eq(v, -5);
}

Test(util, formats_rfc3339_utc)
{
	char out[40];
	fmt_time_ms(1764100000123LL, out, sizeof out);
	cr_assert_str_eq(out, "2025-11-25T19:46:40.123Z");
	fmt_time_ms(0, out, sizeof out);
	cr_assert_str_eq(out, "1970-01-01T00:00:00.000Z");
}

Test(util, hex_and_clocks)
{
	unsigned char in[3] = {0x00, 0xab, 0xff};
	char out[7];
	hex_encode(in, 3, out);
	cr_assert_str_eq(out, "00abff");
	int64_t a = mono_ms();
	sleep_ms(20);
	cr_assert_geq(mono_ms() - a, 19);
	cr_assert_gt(wall_ms(), 1700000000000LL);
}

Test(log, logfmt_line_has_fields_and_quotes, .init = cr_redirect_stderr)
{
	log_init("test");
	log_set_json(0);
	log_set_level(LOG_INFO);
	log_debug("hidden", "k=%d", 1);
	log_info("run started", "run_id=%d workflow=%s note=%s", 7, "nightly", "two words");
	fflush(stderr);
	FILE *f = cr_get_redirected_stderr();
	char line[512] = "";
	cr_assert(fgets(line, sizeof line, f));
	cr_assert(strstr(line, "level=info prog=test msg=\"run started\" run_id=7 workflow=nightly "
	                       "note=\"two words\""),
	          "got: %s", line);
	cr_assert_null(strstr(line, "hidden"));
}

Test(log, json_lines, .init = cr_redirect_stderr)
{
	log_init("test");
	log_set_json(1);
	log_warn("bad \"frame\"", "executor=%s", "e1");
	fflush(stderr);
	FILE *f = cr_get_redirected_stderr();
	char line[512] = "";
	cr_assert(fgets(line, sizeof line, f));
	cr_assert(strstr(line, "\"level\":\"warn\""), "got: %s", line);
	cr_assert(strstr(line, "\"msg\":\"bad \\\"frame\\\"\""), "got: %s", line);
	cr_assert(strstr(line, "\"executor\":\"e1\"}"), "got: %s", line);
	cr_assert_eq(log_set_level_name("loud"), -1);
}
