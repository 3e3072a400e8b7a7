/* main.c: command line. Everything else lives in daemon.c (process) and worker.c. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "hapcfg.h"
#include "log.h"
#include "settings.h"

#ifndef PAYSPOA_VERSION
#define PAYSPOA_VERSION "0.1.0"
#endif

static void usage(FILE *f)
{
	fprintf(f,
	"usage: payspoa -f FILE [-l ADDR]... [-w N] [-d]\n"
	"       payspoa -c -f FILE [--haproxy HAPROXY_CFG]\n"
	"       payspoa haproxy-snippet -f FILE\n"
	"       payspoa -V\n"
	"       payspoa --settings\n"
	"  -f FILE  policy file (libconfig), e.g. conf/payspoa.conf\n"
	"  -c       check the policy file and exit (0 valid, 1 with file:line errors)\n"
	"  --haproxy HAPROXY_CFG  with -c: also report the policy backends HAPROXY_CFG lacks,\n"
	"           its backends the policy does not know, and an agent server that reaches\n"
	"           none of the policy's listeners (exit 1 if any)\n"
	"  haproxy-snippet  print the HAProxy lines generated from the policy (pin tables,\n"
	"           per-currency defaults, routing, backends; haproxy/README.md)\n"
	"  -l ADDR  listen on ADDR instead of the policy's listeners (repeatable):\n"
	"           host:port, [ipv6]:port or unix:/path\n"
	"  -w N     worker threads (overrides agent.workers)\n"
	"  -d       foreground with debug logs\n"
	"  -V       print the version\n"
	"  --settings  print the reference of every policy setting (markdown, as in conf/README.md)\n");
}

/* --settings: the reference generated from the settings tables (policy/settings.c). */
static int print_settings(void)
{
	size_t n = pol_settings_reference(NULL, 0);
	char *buf = malloc(n + 1);

	if (!buf)
		return 1;
	pol_settings_reference(buf, n + 1);
	fputs(buf, stdout);
	free(buf);
	return 0;
}

/* haproxy-snippet -f FILE: the generated block on stdout (hapcfg.c). */
static int print_snippet(int argc, char **argv)
{
	struct policy *p;
	char err[512];
	int rc;

	if (argc != 4 || strcmp(argv[2], "-f") != 0) {
		usage(stderr);
		return 2;
	}
	p = pol_load(argv[3], err, sizeof(err));
	if (!p) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	rc = hapcfg_write(stdout, p, argv[3]) < 0 || fflush(stdout) != 0;
	pol_free(p);
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "haproxy", required_argument, NULL, 'H' },
		{ NULL, 0, NULL, 0 },
	};
	const char *haproxy_cfg = NULL;
	struct daemon_opts o = { 0 };
	struct daemon *d;
	char err[512];
	int opt, check = 0, rc;

	if (argc == 2 && strcmp(argv[1], "--settings") == 0)
		return print_settings();
	if (argc >= 2 && strcmp(argv[1], "haproxy-snippet") == 0)
		return print_snippet(argc, argv);
	while ((opt = getopt_long(argc, argv, "f:cl:w:dVh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'f': o.config = optarg; break;
		case 'c': check = 1; break;
		case 'l':
			if (o.nlisten == POL_MAX_LISTENERS) {
				fprintf(stderr, "payspoa: at most %d listeners\n", POL_MAX_LISTENERS);
				return 2;
			}
			o.listen[o.nlisten++] = optarg;
			break;
		case 'w': o.workers = atoi(optarg); break;
		case 'd': o.debug = 1; break;
		case 'H': haproxy_cfg = optarg; break;
		case 'V': printf("payspoa %s\n", PAYSPOA_VERSION); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!o.config || optind != argc || (haproxy_cfg && !check)) {
		usage(stderr);
		return 2;
	}
	if (check) {
		struct policy *p = pol_load(o.config, err, sizeof(err));

		if (!p) {
			fprintf(stderr, "%s\n", err);
			return 1;
		}
		char promise[1024];

		pol_pin_guarantee(p, promise, sizeof(promise));
		printf("%s: valid\n%s", o.config, promise);
		rc = haproxy_cfg ? hapcfg_check(stdout, p, haproxy_cfg) : 0;
		pol_free(p);
		if (haproxy_cfg && rc == 0)
			printf("%s: every backend matches the policy, and the agent's address\n", haproxy_cfg);
		return rc != 0;
	}
	if (o.debug)
		log_set_level(LOG_LVL_DEBUG);
	d = daemon_new(&o, err, sizeof(err));
	if (!d) {
		log_json(LOG_LVL_ERROR, "start_failed", "error", err, NULL);
		return 1;
	}
	if (!o.debug) {
		enum log_level lvl;

		if (d->agent.log_level && log_level_parse(d->agent.log_level, &lvl) == 0)
			log_set_level(lvl);
	}
	rc = daemon_run(d);
	daemon_free(d);
	return rc;
}
