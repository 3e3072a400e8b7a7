/* test-settings.c: the settings tables (policy/settings.c): every declared key is in
 * conf/README.md's reference exactly as `payspoa --settings` prints it, the defaults are
 * what the loader gives, and the config helpers (policy/cfg.c) keep their contracts. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "breaker.h"
#include "cfg.h"
#include "policy-t.h"
#include "policy.h"
#include "settings.h"
#include "test.h"

#define MINI \
	"fee_schedules = ( { name = \"f\"; percent = 2.9; fixed = 30; } );\n" \
	"backends = ( { name = \"b1\"; account = \"acct_1\"; entity = \"e1\"; region = \"other\";\n" \
	"               currencies = [ \"usd\" ]; fee_schedule = \"f\"; } );\n" \
	"classes = ( { name = \"std\"; } );\n"

static char *read_all(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
	    (buf = malloc((size_t)n + 1)) != NULL) {
		buf[fread(buf, 1, (size_t)n, f)] = 0;
	}
	fclose(f);
	return buf;
}

static char *section_ref(const struct pol_section *sec)
{
	size_t n = pol_section_reference(sec, NULL, 0);
	char *buf = malloc(n + 1);

	if (buf)
		pol_section_reference(sec, buf, n + 1);
	return buf;
}

/* Every declared key of every section has its row in doc, and each section's generated
 * table is there whole. Returns the number of problems, naming the first in why. */
static int check_documented(const char *doc, char *why, size_t whylen)
{
	int i, bad = 0;

	why[0] = 0;
	for (i = 0; i < pol_nsections; i++) {
		char *ref = section_ref(pol_sections[i]), *line, *save = NULL;

		if (!ref)
			return 1;
		if (!strstr(doc, ref) && !bad++)
			snprintf(why, whylen, "section '%s' differs from `payspoa --settings`", pol_sections[i]->name);
		for (line = strtok_r(ref, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
			if (strncmp(line, "| `", 3) == 0 && !strstr(doc, line) && !bad++)
				snprintf(why, whylen, "%s: no row \"%s\"", pol_sections[i]->name, line);
		free(ref);
	}
	return bad;
}

TEST(readme_documents_every_key)
{
	char why[512], *doc = read_all("conf/README.md");

	ASSERT(doc != NULL);
	if (check_documented(doc, why, sizeof(why)))
		TEST_FAIL_("conf/README.md: %s (paste the output of ./payspoa --settings)", why);
	free(doc);
}

/* The check above can fail: delete one key's row from the README and it does. */
TEST(a_deleted_key_is_caught)
{
	char why[512], *doc = read_all("conf/README.md"), *row, *end;

	ASSERT(doc != NULL);
	row = strstr(doc, "| `open_s` |");
	ASSERT(row != NULL);
	end = strchr(row, '\n');
	ASSERT(end != NULL);
	memmove(row, end + 1, strlen(end + 1) + 1);
	ASSERT(check_documented(doc, why, sizeof(why)) > 0);
	ASSERT(strstr(why, "breaker") != NULL);
	free(doc);
}

/* Every section has a table, every key one line of doc; names are unique per section. */
TEST(declarations_complete)
{
	int i, j, k;

	ASSERT(pol_nsections >= 10);
	for (i = 0; i < pol_nsections; i++) {
		const struct pol_section *sec = pol_sections[i];

		ASSERT(sec->nsettings > 0);
		for (j = 0; j < sec->nsettings; j++) {
			const struct pol_setting *s = &sec->settings[j];

			if (!s->doc || !s->doc[0] || strchr(s->doc, '\n') || strchr(s->doc, '|'))
				TEST_FAIL_("%s.%s: no one-line doc", sec->name, s->name);
			if (s->kind == PS_CUSTOM && (!s->type || !s->show))
				TEST_FAIL_("%s.%s: a custom setting needs a type and a show hook", sec->name, s->name);
			for (k = 0; k < j; k++)
				if (strcmp(sec->settings[k].name, s->name) == 0)
					TEST_FAIL_("%s.%s declared twice", sec->name, s->name);
		}
	}
}

/* The breaker's first open time is 20 s everywhere (module default, policy default). */
TEST(breaker_open_time_20s)
{
	char err[256];
	struct brk_cfg c;
	struct policy *p = pol_load_string(MINI, "t.conf", err, sizeof(err));

	brk_cfg_default(&c);
	ASSERT_EQ(c.open_base_us, 20000000);
	if (!p)
		TEST_FAIL_("%s", err);
	ASSERT_EQ(p->breaker.cfg.open_base_us, 20000000);
	ASSERT_EQ(p->breaker.cfg.jitter_permille, 200);
	ASSERT_EQ(p->breaker.cfg.bucket_us, 1000000);
	pol_free(p);
}

/* Units: seconds → µs, milliseconds → µs, shares → permille; pin counts as given. */
TEST(units_converted)
{
	char err[256];
	struct policy *p = pol_load_string(MINI "breaker = { open_s = 1.5; failure_rate = 0.25; buckets = 5; };\n"
	                                   "adaptive = { cooldown_ms = 750; forget_s = 2.5; };\n"
	                                   "pinning = { idem_slots = 100; };\n", "t.conf", err, sizeof(err));

	if (!p)
		TEST_FAIL_("%s", err);
	ASSERT_EQ(p->breaker.cfg.open_base_us, 1500000);
	ASSERT_EQ(p->breaker.cfg.failure_permille, 250);
	ASSERT_EQ(p->breaker.cfg.bucket_us, 2000000); /* the default 10 s window over 5 buckets */
	ASSERT_EQ(p->adaptive.cooldown_us, 750000);
	ASSERT_EQ(p->adaptive.forget_us, 2500000);
	ASSERT_EQ(p->pin.idem_slots, 100);
	pol_free(p);
}

/* cfg.c: types, ranges, absent keys, strings and file:line, in both wordings. */
TEST(cfg_helpers)
{
	char err[256];
	struct cfg_file *f = cfg_read_string("g = { i = 7; x = 1.5; s = \"*\"; e = \"\"; b = true;\n"
	                                     " l = ( 1, 2.5 ); n = [ -1 ]; };\n", "t", err, sizeof(err));
	struct cfg_ctx c = { "t", err, sizeof(err), CFG_WORDS_POLICY };
	const struct cfg_node *g;
	long long i = 0;
	double x = 9;
	bool b = false;
	char buf[4] = "old";

	ASSERT(f != NULL);
	g = cfg_get(cfg_root(f), "g");
	ASSERT(cfg_is_group(g));
	ASSERT_EQ(cfg_int(&c, g, "i", true, 0, 10, &i), 0);
	ASSERT_EQ(i, 7);
	ASSERT_EQ(cfg_num(&c, g, "i", false, 0, 10, &x), 0); /* an integer is a number */
	ASSERT_NEAR(x, 7, 0);
	ASSERT_EQ(cfg_num(&c, g, "absent", false, 0, 10, &x), 0);
	ASSERT_NEAR(x, 7, 0);
	ASSERT_EQ(cfg_int(&c, g, "x", false, 0, 10, &i), -1);
	ASSERT_STREQ(err, "t:1: 'x' must be an integer, not a number");
	ASSERT_EQ(cfg_num(&c, g, "x", false, 2, 3, &x), -1);
	ASSERT_STREQ(err, "t:1: 'x' = 1.5 is out of range 2..3");
	ASSERT_EQ(cfg_int(&c, g, "absent", true, 0, 1, &i), -1);
	ASSERT_STREQ(err, "t:1: missing 'absent'");
	ASSERT_EQ(cfg_bool(&c, g, "b", &b), 0);
	ASSERT(b);
	ASSERT_EQ(cfg_str(&c, g, "absent", 0, buf, sizeof(buf)), CFG_MISSING);
	ASSERT_STREQ(buf, "old");
	ASSERT_EQ(cfg_str(&c, g, "e", 0, buf, sizeof(buf)), -1);
	ASSERT_STREQ(err, "t:1: 'e' must not be empty");
	ASSERT_EQ(cfg_str(&c, g, "s", CFG_STAR_ANY, buf, sizeof(buf)), 0);
	ASSERT_STREQ(buf, "");
	ASSERT_EQ(cfg_keys(&c, g, "g", (const char *const[]){ "i", NULL }), -1);
	ASSERT_STREQ(err, "t:1: unknown key 'x' in g");

	c.words = CFG_WORDS_SCENARIO;
	ASSERT_EQ(cfg_num(&c, g, "x", false, 2, 3, &x), -1);
	ASSERT_STREQ(err, "t:1: 'x' must be within 2..3");
	ASSERT_EQ(cfg_keys(&c, g, "g", (const char *const[]){ "i", NULL }), -1);
	ASSERT_STREQ(err, "t:1: unknown key 'x'");
	ASSERT_EQ(cfg_elem_num(&c, cfg_get(g, "l"), 1, &x), 0);
	ASSERT_NEAR(x, 2.5, 0);
	ASSERT_EQ(cfg_elem_num(&c, cfg_get(g, "n"), 0, &x), -1);
	ASSERT_STREQ(err, "t:2: 'n' must hold numbers >= 0");
	cfg_close(f);
}

int main(void)
{
	RUN(readme_documents_every_key);
	RUN(a_deleted_key_is_caught);
	RUN(declarations_complete);
	RUN(breaker_open_time_20s);
	RUN(units_converted);
	RUN(cfg_helpers);
	return test_summary();
}
