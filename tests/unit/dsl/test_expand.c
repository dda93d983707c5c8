/* Templates and durations. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "dsl.h"

static const char *lookup(void *ud, const char *ref)
{
	(void)ud;
	if (!strcmp(ref, "params.region"))
		return "eu";
	if (!strcmp(ref, "tasks.a.output.id"))
		return "b-42";
	if (!strcmp(ref, "run.id"))
		return "7";
	return NULL;
}

static void expect_expand(const char *in, const char *want)
{
	char *out = NULL, err[256] = "";
	cr_assert_eq(dsl_expand(in, lookup, NULL, &out, err, sizeof(err)), 0, "%s: %s", in, err);
	cr_expect_str_eq(out, want, "expanding '%s'", in);
	free(out);
}

static void expect_fail(const char *in, const char *needle)
{
	char *out = NULL, err[256] = "";
	cr_expect_eq(dsl_expand(in, lookup, NULL, &out, err, sizeof(err)), -1, "%s", in);
	cr_expect_null(out);
	cr_expect(strstr(err, needle) != NULL, "'%s': error '%s' lacks '%s'", in, err, needle);
}

Test(expand, references)
{
	expect_expand("", "");
	expect_expand("plain", "plain");
	expect_expand("${params.region}", "eu");
	expect_expand("--region=${params.region}/${run.id}", "--region=eu/7");
	expect_expand("${tasks.a.output.id}${tasks.a.output.id}", "b-42b-42");
	expect_expand("cost $5 and $$ and $", "cost $5 and $$ and $");
}

Test(expand, unknown_left_alone)
{
	expect_expand("${secrets.TOKEN}", "${secrets.TOKEN}");
	expect_expand("a ${secrets.X} b ${params.region}", "a ${secrets.X} b eu");
}

Test(expand, escapes)
{
	expect_expand("$${params.region}", "${params.region}");
	expect_expand("$${", "${");
	expect_expand("$$${params.region}", "$${params.region}");
}

Test(expand, errors)
{
	expect_fail("${params.region", "unterminated");
	expect_fail("abc ${", "unterminated");
	expect_fail("${}", "empty");
	expect_fail("${a b}", "invalid reference");
}

Test(expand, null_lookup)
{
	char *out = NULL, err[64];
	cr_assert_eq(dsl_expand("x${run.id}", NULL, NULL, &out, err, sizeof(err)), 0);
	cr_expect_str_eq(out, "x${run.id}");
	free(out);
}

Test(duration, valid)
{
	static const struct {
		const char *s;
		long long ms;
	} cases[] = {{"0", 0},         {"250ms", 250},    {"30s", 30000},           {"5m", 300000},
	             {"2h", 7200000},  {"1d", 86400000},  {"1h30m", 5400000},       {"45", 45000},
	             {"1m30s", 90000}, {"1s500ms", 1500}, {"1d2h3m4s5ms", 93784005}};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		long long ms = -1;
		cr_expect_eq(dsl_parse_duration(cases[i].s, &ms), 0, "%s", cases[i].s);
		cr_expect_eq(ms, cases[i].ms, "%s: %lld", cases[i].s, ms);
	}
}

Test(duration, invalid)
{
	static const char *bad[] = {"",
	                            "s",
	                            "-1s",
	                            "1.5s",
	                            "30m1h",
	                            "1h1h",
	                            "5 m",
	                            "5M",
	                            "1w",
	                            "abc",
	                            " 5s",
	                            "5s ",
	                            "99999999999999999d",
	                            "1x",
	                            "10ms5s",
	                            "1hh"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		long long ms = 0;
		cr_expect_eq(dsl_parse_duration(bad[i], &ms), -1, "'%s' should be rejected",
		             bad[i]);
	}
	long long ms;
	cr_expect_eq(dsl_parse_duration(NULL, &ms), -1);
}
