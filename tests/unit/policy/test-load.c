/* test-load.c: the policy loader: the shipped files load, every kind of error says
 * file:line, @include resolves against the including file's directory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "policy-t.h"
#include "policy.h"
#include "test.h"

/* The smallest valid policy; cases append or replace parts of it. */
#define MINI \
	"fee_schedules = ( { name = \"f\"; percent = 2.9; fixed = 30; } );\n" \
	"backends = ( { name = \"b1\"; account = \"acct_1\"; entity = \"e1\"; region = \"other\";\n" \
	"               currencies = [ \"usd\" ]; fee_schedule = \"f\"; } );\n" \
	"classes = ( { name = \"std\"; } );\n"

static char err[512];

static struct policy *load_str(const char *text)
{
	err[0] = 0;
	return pol_load_string(text, "t.conf", err, sizeof(err));
}

/* Loads text that must fail, and checks the error names the line and says `what`. */
static void expect_error(const char *text, int line, const char *what)
{
	struct policy *p = load_str(text);
	char prefix[32];

	if (p) {
		pol_free(p);
		TEST_FAIL_("loaded, expected \"%s\" at line %d", what, line);
	}
	snprintf(prefix, sizeof(prefix), "t.conf:%d: ", line);
	if (strncmp(err, prefix, strlen(prefix)) || !strstr(err, what))
		TEST_FAIL_("got \"%s\", expected \"%s...%s\"", err, prefix, what);
}

TEST(load_default_conf)
{
	struct policy *p = pol_load("conf/payspoa.conf", err, sizeof(err));
	const struct pol_agent *a;

	if (!p)
		TEST_FAIL_("%s", err);
	a = pol_agent(p);
	ASSERT_EQ(a->nlisten, 1);
	ASSERT_STREQ(a->listen[0], "unix:/tmp/payspoa-agent.sock"); /* haproxy.cfg's PAY_AGENT_ADDR: test-hapcfg */
	ASSERT_EQ(a->max_frame_size, 16380);
	ASSERT_STREQ(p->backends[p->default_backend].name, "stripe_us");
	ASSERT(p->nbackends >= 2);
	ASSERT_STREQ(p->backends[1].name, "stripe_eu");
	ASSERT(p->nregions >= 3); /* from the @include */
	ASSERT_EQ(p->country_region[('D' - 'A') * 26 + ('E' - 'A')], 1); /* DE is eea */
	pol_free(p);
}

TEST(load_examples)
{
	static const char *const files[] = { "conf/examples/multi-entity.conf", "conf/examples/connect.conf",
		"conf/examples/low-budget.conf", "conf/examples/fleet.conf" };
	unsigned i;

	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		struct policy *p = pol_load(files[i], err, sizeof(err));

		if (!p)
			TEST_FAIL_("%s", err);
		pol_free(p);
	}
}

TEST(agent_defaults)
{
	struct policy *p = load_str(MINI);
	const struct pol_agent *a;

	if (!p)
		TEST_FAIL_("%s", err);
	a = pol_agent(p);
	ASSERT_EQ(a->nlisten, 1);
	ASSERT_STREQ(a->listen[0], POL_LISTEN_BUILTIN); /* "127.0.0.1:12345", as it always was */
	ASSERT_EQ(a->workers, 0);
	ASSERT_EQ(a->max_connections, 512);
	ASSERT_EQ(a->max_frame_size, 16380);
	ASSERT_EQ(a->idle_timeout_ms, 30000);
	ASSERT(a->admin_socket == NULL);
	ASSERT(a->metrics == NULL);
	ASSERT(a->state_file == NULL);
	ASSERT_STREQ(a->log_level, "info");
	ASSERT_EQ(p->pin.idem_ttl_s, 86400);
	ASSERT_NEAR(p->accounts[0].budget.rate, 100, 1e-9);
	pol_free(p);
}

TEST(agent_values)
{
	struct policy *p = load_str(MINI "agent = { listen = [ \"[::1]:9000\", \"unix:/run/p.sock\" ];\n"
	                            " workers = 4; max_connections = 10; max_frame_size = 256;\n"
	                            " admin_socket = \"/tmp/a.sock\"; state_file = \"/var/lib/p.state\";\n"
	                            " log_level = \"debug\"; };\n");
	const struct pol_agent *a;

	if (!p)
		TEST_FAIL_("%s", err);
	a = pol_agent(p);
	ASSERT_EQ(a->nlisten, 2);
	ASSERT_STREQ(a->listen[1], "unix:/run/p.sock");
	ASSERT_EQ(a->workers, 4);
	ASSERT_EQ(a->max_frame_size, 256);
	ASSERT_STREQ(a->admin_socket, "/tmp/a.sock");
	ASSERT_STREQ(a->state_file, "/var/lib/p.state");
	ASSERT_STREQ(a->log_level, "debug");
	pol_free(p);
}

/* Table of broken files: each names the line and the complaint. */
TEST(errors_have_file_line)
{
	static const struct { const char *text; int line; const char *what; } cases[] = {
		{ MINI "agent = { workers = 65; };\n", 5, "out of range" },
		{ MINI "agent = { max_frame_size = 255; };\n", 5, "out of range" },
		{ MINI "agent = { max_connections = 0; };\n", 5, "out of range" },
		{ MINI "agent = { workers = \"4\"; };\n", 5, "must be an integer" },
		{ MINI "agent = { colour = 1; };\n", 5, "unknown key 'colour'" },
		{ MINI "agent = { listen = [ \"localhost\" ]; };\n", 5, "listen" },
		{ MINI "agent = { listen = [ \"h:0\" ]; };\n", 5, "port" },
		{ MINI "agent = { listen = [ ]; };\n", 5, "empty" },
		{ MINI "agent = { log_level = \"loud\"; };\n", 5, "log_level" },
		{ MINI "nonsense = 1;\n", 5, "unknown key 'nonsense'" },
		{ MINI "default_backend = \"nope\";\n", 5, "undefined backend 'nope'" },
		{ MINI "classify = { default = \"vip\"; };\n", 5, "undefined class 'vip'" },
		{ MINI "classify = {\n rules = ( { path = \"/v1/x\"; class = \"vip\"; } ); };\n", 6, "undefined class 'vip'" },
		{ MINI "classify = {\n rules = ( { path = \"v1\"; class = \"std\"; } ); };\n", 6, "start with '/'" },
		{ MINI "classify = {\n rules = ( { path = \"/v1/**/x\"; class = \"std\"; } ); };\n", 6, "'**'" },
		{ MINI "classify = {\n rules = ( { path = \"/v1/*a*\"; class = \"std\"; } ); };\n", 6, "one '*'" },
		{ MINI "compliance = ( { entities = [ \"e9\" ]; } );\n", 5, "undefined entity 'e9'" },
		{ MINI "compliance = ( { card_regions = [ \"mars\" ]; backends = [ \"b1\" ]; } );\n", 5, "undefined region" },
		{ MINI "connect = ( { account = \"acct_c\"; backends = [ \"b2\" ]; } );\n", 5, "undefined backend 'b2'" },
		{ MINI "pinning = { idem_ttl_s = 1; };\n", 5, "out of range" },
		{ MINI "throttle = { accounts = ( { account = \"acct_9\"; rate = 5.0; } ); };\n", 5, "undefined account" },
		{ MINI "throttle = { account = { rate = 0.0; }; };\n", 5, "out of range" },
		{ MINI "scoring = { load_cost = -1.0; };\n", 5, "out of range" },
		{ MINI "fleet = { redis = \"redis-host\"; };\n", 5, "host:port" },
		{ MINI "fleet = { redis = \"unix:relative.sock\"; };\n", 5, "absolute path" },
		{ MINI "fleet = { heartbeat_ms = 1000; node_ttl_ms = 1500; };\n", 5, "twice 'heartbeat_ms'" },
		{ MINI "fleet = { node = \"a b\"; };\n", 5, "'node'" },
		{ MINI "fleet = { timeout_ms = 1; };\n", 5, "out of range" },
		{ "fee_schedules = ( { name = \"f\"; percent = 101.0; } );\n", 1, "out of range" },
		{ "fee_schedules = ( { name = \"f\"; percent = 1.0;\n rates = ( { interchange = 0.2; percent = 1.0; } ); } );\n",
		  2, "either 'percent' or IC++" },
		{ "fee_schedules = ( { name = \"f\"; percent = 1; } );\n"
		  "backends = ( { name = \"b\"; account = \"a\"; entity = \"e\"; region = \"other\";\n"
		  "  currencies = [ \"usd\" ]; fee_schedule = \"g\"; } );\n", 3, "undefined fee schedule 'g'" },
		{ "fee_schedules = ( { name = \"f\"; percent = 1; } );\n"
		  "backends = ( { name = \"b\"; account = \"a\"; entity = \"e\"; region = \"other\";\n"
		  "  currencies = [ \"dollars\" ]; fee_schedule = \"f\"; } );\n", 3, "ISO 4217" },
		{ "fee_schedules = ( { name = \"f\"; percent = 1; } );\n"
		  "backends = ( { name = \"b\"; account = \"a\"; entity = \"e\"; region = \"moon\";\n"
		  "  currencies = [ \"usd\" ]; fee_schedule = \"f\"; } );\n", 2, "undefined region 'moon'" },
		{ "fee_schedules = ( { name = \"f\"; percent = 1; } );\n"
		  "backends = ( { name = \"b\"; account = \"a\"; entity = \"e\"; region = \"other\";\n"
		  "  currencies = [ \"usd\" ]; fee_schedule = \"f\"; },\n"
		  " { name = \"b\"; account = \"a\"; entity = \"e\"; region = \"other\";\n"
		  "  currencies = [ \"usd\" ]; fee_schedule = \"f\"; } );\n", 4, "defined twice" },
		{ MINI "classes = ( { name = \"x\"; } );\n", 5, "" }, /* libconfig: duplicate setting */
		{ "regions = { eu = [ \"FR\" ]; us = [ \"FR\" ]; };\n" MINI, 1, "two regions" },
		{ "fee_schedules = ( { name = \"f\"; percent = 2.9 } \n", 2, "" }, /* parse error */
		{ MINI "classes = ( { name = \"a\"; reserve = 0.5; }, { name = \"b\"; reserve = 0.5; } );\n", 0, "" },
	};
	unsigned i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct policy *p = load_str(cases[i].text);

		if (p) {
			pol_free(p);
			TEST_FAIL_("case %u loaded, expected \"%s\"", i, cases[i].what);
		}
		if (cases[i].line)
			expect_error(cases[i].text, cases[i].line, cases[i].what);
		else if (!strstr(err, "t.conf:"))
			TEST_FAIL_("case %u: no file:line in \"%s\"", i, err);
	}
}

TEST(reserves_over_limit)
{
	struct policy *p = load_str("fee_schedules = ( { name = \"f\"; percent = 1; } );\n"
	                            "backends = ( { name = \"b\"; account = \"a\"; entity = \"e\"; region = \"other\";\n"
	                            "  currencies = [ \"usd\" ]; fee_schedule = \"f\"; } );\n"
	                            "classes = ( { name = \"a\"; reserve = 0.5; },\n { name = \"b\"; reserve = 0.5; } );\n");

	ASSERT(p == NULL);
	ASSERT(strstr(err, "t.conf:5: ") != NULL); /* the class that tips it over */
	ASSERT(strstr(err, "reserves") != NULL);
}

TEST(include_relative_to_file)
{
	char dir[] = "/tmp/pol-load-XXXXXX", path[128];
	FILE *f;
	struct policy *p;

	ASSERT(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/inc.conf", dir);
	f = fopen(path, "w");
	ASSERT(f != NULL);
	fputs("classes = ( { name = \"std\"; } );\n", f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/main.conf", dir);
	f = fopen(path, "w");
	ASSERT(f != NULL);
	fputs("fee_schedules = ( { name = \"f\"; percent = 1; } );\n"
	      "backends = ( { name = \"b\"; account = \"a\"; entity = \"e\"; region = \"other\";\n"
	      "  currencies = [ \"usd\" ]; fee_schedule = \"f\"; } );\n"
	      "@include \"inc.conf\"\n", f);
	fclose(f);
	p = pol_load(path, err, sizeof(err));
	if (!p)
		TEST_FAIL_("%s", err);
	ASSERT_STREQ(p->classes[0].name, "std");
	pol_free(p);

	/* An error inside the included file names that file. */
	snprintf(path, sizeof(path), "%s/inc.conf", dir);
	f = fopen(path, "w");
	ASSERT(f != NULL);
	fputs("classes = ( { name = \"std\"; priority = 5000; } );\n", f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/main.conf", dir);
	ASSERT(pol_load(path, err, sizeof(err)) == NULL);
	ASSERT(strstr(err, "inc.conf:1: ") != NULL);
	ASSERT(strstr(err, "out of range") != NULL);
}

TEST(missing_file)
{
	ASSERT(pol_load("/nonexistent/x.conf", err, sizeof(err)) == NULL);
	ASSERT(strncmp(err, "/nonexistent/x.conf:", 20) == 0);
}

TEST(string_refuses_include)
{
	ASSERT(load_str("@include \"/etc/passwd\"\n") == NULL);
	ASSERT(strstr(err, "@include") != NULL);
}

/* ---- the pre-scan (cfg.c): regression tests named after the bugs ---------------------- */

/* Writes n bytes of text (NUL bytes allowed) to dir/name; its path into path. */
static void write_file(const char *dir, const char *name, const char *text, size_t n, char *path, size_t size)
{
	FILE *f;

	snprintf(path, size, "%s/%s", dir, name);
	f = fopen(path, "w");
	ASSERT(f != NULL);
	ASSERT_EQ(fwrite(text, 1, n, f), n);
	fclose(f);
}

/* Writes dir/main.conf = MINI + extra, which must fail to load at `where` with `what`. */
static void expect_main_error(const char *dir, const char *extra, const char *where, const char *what)
{
	char text[1024], path[256];
	int n = snprintf(text, sizeof(text), "%s%s", MINI, extra);

	write_file(dir, "main.conf", text, (size_t)n, path, sizeof(path));
	if (pol_load(path, err, sizeof(err)) != NULL)
		TEST_FAIL_("%s loaded, expected \"%s\"", path, what);
	if (!strstr(err, where) || !strstr(err, what))
		TEST_FAIL_("got \"%s\", expected \"%s ...%s\"", err, where, what);
}

/* Removes the files the cases made, then their folder. */
static void clean_dir(char *dir)
{
	static const char *const names[] = { "main.conf", "a.conf", "big.conf", "fifo", "nul.conf" };
	char path[256];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		unlink(path);
	}
	snprintf(path, sizeof(path), "%s/sub", dir);
	rmdir(path);
	rmdir(dir);
}

/* main.conf includes `name`, made by make(path, mode) (mkdir, mkfifo): refused with
 * file:line, and so is `name` given as the policy file itself. */
static void expect_special_include(const char *name, int (*make)(const char *, mode_t))
{
	char dir[] = "/tmp/pol-load-XXXXXX", path[256], inc[64];

	ASSERT(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	ASSERT_EQ(make(path, 0700), 0);
	ASSERT(pol_load(path, err, sizeof(err)) == NULL);
	ASSERT(strstr(err, "not a regular file") != NULL);
	snprintf(inc, sizeof(inc), "@include \"%s\"\n", name);
	expect_main_error(dir, inc, "main.conf:5: ", "not a regular file");
	clean_dir(dir);
}

/* libconfig called exit(2) on an @include of a directory: -c and a reload died. */
TEST(include_directory_exits_process)
{
	expect_special_include("sub", mkdir);
}

/* An @include of a FIFO blocked the loader (and the control thread) forever; the case's
 * time limit catches a hang. */
TEST(include_fifo_hangs_loader)
{
	expect_special_include("fifo", mkfifo);
}

/* A file that includes itself, directly or through another, is refused at once; the
 * same file twice side by side is no cycle. */
TEST(include_cycle)
{
	static const char twice[] = MINI "@include \"a.conf\"\n@include \"a.conf\"\n";
	char dir[] = "/tmp/pol-load-XXXXXX", path[256];
	struct policy *p;

	ASSERT(mkdtemp(dir) != NULL);
	write_file(dir, "a.conf", "# a\n@include \"main.conf\"\n", 25, path, sizeof(path));
	expect_main_error(dir, "@include \"a.conf\"\n", "a.conf:2: ", "cycle");
	write_file(dir, "a.conf", "# nothing\n", 10, path, sizeof(path));
	write_file(dir, "main.conf", twice, sizeof(twice) - 1, path, sizeof(path));
	p = pol_load(path, err, sizeof(err));
	if (!p)
		TEST_FAIL_("%s", err);
	pol_free(p);
	clean_dir(dir);
}

/* A huge include (here a sparse 17 MiB file) is refused before anything reads it. */
TEST(include_huge_file)
{
	char dir[] = "/tmp/pol-load-XXXXXX", path[256];

	ASSERT(mkdtemp(dir) != NULL);
	write_file(dir, "big.conf", "", 0, path, sizeof(path));
	ASSERT_EQ(truncate(path, 17 << 20), 0);
	expect_main_error(dir, "@include \"big.conf\"\n", "main.conf:5: ", "larger than 16 MiB");
	clean_dir(dir);
}

/* max_connections = 4294967297 was read as 1 (libconfig's atoi). */
TEST(int_setting_wraps_at_2_32)
{
	struct policy *p;

	expect_error(MINI "agent = { max_connections = 4294967297; };\n", 5, "out of range");
	expect_error(MINI "agent = { max_connections = 2147483648; };\n", 5, "out of range");
	expect_error(MINI "agent = { max_connections = 0x100000001; };\n", 5, "out of range");
	expect_error(MINI "agent = { max_connections = -2147483649; };\n", 5, "out of range");
	expect_error(MINI "agent = { max_connections = 99999999999999999999L; };\n", 5, "out of range");
	/* in range, 64-bit with L, and digits in a comment are left to the loader */
	p = load_str(MINI "agent = { max_connections = 2048; idle_timeout_ms = 60000L; };\n"
	                  "# 4294967297 in a comment\n");
	if (!p)
		TEST_FAIL_("%s", err);
	ASSERT_EQ(pol_agent(p)->max_connections, 2048);
	ASSERT_EQ(pol_agent(p)->idle_timeout_ms, 60000);
	pol_free(p);
}

/* "in\x00fo" was silently cut to "in"; a raw NUL byte in the file too. */
TEST(nul_in_string_truncates)
{
	static const char raw[] = MINI "agent = { log_level = \"in\0fo\"; };\n";
	char dir[] = "/tmp/pol-load-XXXXXX", path[256];

	expect_error(MINI "agent = { log_level = \"in\\x00fo\"; };\n", 5, "NUL");
	ASSERT(mkdtemp(dir) != NULL);
	write_file(dir, "nul.conf", raw, sizeof(raw) - 1, path, sizeof(path));
	ASSERT(pol_load(path, err, sizeof(err)) == NULL);
	ASSERT(strstr(err, "nul.conf:5: ") != NULL);
	ASSERT(strstr(err, "NUL") != NULL);
	clean_dir(dir);
}

int main(void)
{
	RUN(load_default_conf);
	RUN(load_examples);
	RUN(agent_defaults);
	RUN(agent_values);
	RUN(errors_have_file_line);
	RUN(reserves_over_limit);
	RUN(include_relative_to_file);
	RUN(missing_file);
	RUN(string_refuses_include);
	RUN(include_directory_exits_process);
	RUN(include_fifo_hangs_loader);
	RUN(include_cycle);
	RUN(include_huge_file);
	RUN(int_setting_wraps_at_2_32);
	RUN(nul_in_string_truncates);
	return test_summary();
}
