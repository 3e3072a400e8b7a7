/* main.c: the emulated payment API's command line, listening socket and loop (see
 * README.md):
 *
 *   payapi -l 127.0.0.1:8101 -n stripe_us [-c MAXCONN] [-o MAXOBJECTS] [-s SEED]
 *
 * Logs its start (with the port, useful with port 0) and its stop on stderr, never
 * anything about a request. SIGINT and SIGTERM stop it. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "payapi.h"

struct pa_instance pa;

static int pa_listen(const char *spec, char *err, size_t errlen)
{
	char host[256];
	const char *colon = strrchr(spec, ':'), *port;
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
	                          .ai_flags = AI_PASSIVE | AI_NUMERICSERV }, *ai = NULL;
	size_t hl;
	int fd = -1, one = 1, rc;

	if (!colon || colon == spec || (size_t)(colon - spec) >= sizeof(host)) {
		snprintf(err, errlen, "listen address '%s': expected HOST:PORT", spec);
		return -1;
	}
	hl = (size_t)(colon - spec);
	if (spec[0] == '[' && hl >= 2 && spec[hl - 1] == ']') {
		memcpy(host, spec + 1, hl - 2);
		host[hl - 2] = '\0';
	} else {
		memcpy(host, spec, hl);
		host[hl] = '\0';
	}
	port = colon + 1;
	rc = getaddrinfo(host, port, &hints, &ai);
	if (rc) {
		snprintf(err, errlen, "listen address '%s': %s", spec, gai_strerror(rc));
		return -1;
	}
	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 1024) < 0) {
		snprintf(err, errlen, "listen on '%s': %s", spec, strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	return fd;
}

static unsigned pa_bound_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
		return 0;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return 0;
}

static void pa_signal_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	ev_break(loop, EVBREAK_ALL);
}

static void pa_usage(FILE *f)
{
	fprintf(f,
	        "usage: payapi [-l HOST:PORT] [-n NAME] [-c MAXCONN] [-o MAXOBJECTS] [-s SEED]\n"
	        "  an emulated Stripe-shaped payment API (see tests/payapi/README.md)\n"
	        "  -l  listen address (default 127.0.0.1:8101; port 0 picks one, printed on stderr)\n"
	        "  -n  instance name, returned in X-Payapi-Instance (default payapi)\n"
	        "  -c  maximum connections (default 4096)\n"
	        "  -o  objects kept before the oldest are forgotten (default 131072)\n"
	        "  -s  random seed for injected faults and ids (default: random)\n");
}

static uint64_t pa_seed(void)
{
	uint64_t s = 0;
	int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);

	if (fd >= 0) {
		if (read(fd, &s, sizeof(s)) != (ssize_t)sizeof(s))
			s = 0;
		close(fd);
	}
	return s ^ ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid();
}

int main(int argc, char **argv)
{
	const char *listen_spec = "127.0.0.1:8101";
	char err[320];
	uint64_t maxobj = 131072, maxconn = 4096, seed = 0;
	bool seeded = false;
	ev_signal sigint, sigterm;
	int opt;

	strcpy(pa.name, "payapi");
	while ((opt = getopt(argc, argv, "l:n:c:o:s:h")) != -1) {
		switch (opt) {
		case 'l':
			listen_spec = optarg;
			break;
		case 'n':
			if (!pa_token_ok(optarg, strlen(optarg), PA_NAME_MAX)) {
				fprintf(stderr, "payapi: -n: 1..%d characters of [A-Za-z0-9_]\n",
				        PA_NAME_MAX);
				return 2;
			}
			strcpy(pa.name, optarg);
			break;
		case 'c':
			if (!pa_parse_u64(optarg, strlen(optarg), 1000000, &maxconn) || !maxconn) {
				fprintf(stderr, "payapi: -c: a number from 1 to 1000000\n");
				return 2;
			}
			break;
		case 'o':
			if (!pa_parse_u64(optarg, strlen(optarg), 1 << 24, &maxobj) || maxobj < 16) {
				fprintf(stderr, "payapi: -o: a number from 16 to %d\n", 1 << 24);
				return 2;
			}
			break;
		case 's':
			if (!pa_parse_u64(optarg, strlen(optarg), UINT64_MAX, &seed)) {
				fprintf(stderr, "payapi: -s: a number\n");
				return 2;
			}
			seeded = true;
			break;
		case 'h':
			pa_usage(stdout);
			return 0;
		default:
			pa_usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		pa_usage(stderr);
		return 2;
	}

	pa_rand_seed(seeded ? seed : pa_seed());
	pa.id_tag = pa_rand64();
	pa.maxconn = (unsigned)maxconn;
	if (pa_store_init((uint32_t)maxobj) < 0) {
		fprintf(stderr, "payapi: out of memory\n");
		return 1;
	}
	pa.bhv.error_status = 500;

	pa.lfd = pa_listen(listen_spec, err, sizeof(err));
	if (pa.lfd < 0) {
		fprintf(stderr, "payapi: %s\n", err);
		return 1;
	}
	pa.loop = ev_default_loop(0);
	if (!pa.loop) {
		fprintf(stderr, "payapi: cannot initialise libev\n");
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	ev_io_init(&pa.lio, pa_accept_cb, pa.lfd, EV_READ);
	ev_io_start(pa.loop, &pa.lio);
	ev_init(&pa.accept_pause, pa_accept_resume_cb);
	ev_signal_init(&sigint, pa_signal_cb, SIGINT);
	ev_signal_init(&sigterm, pa_signal_cb, SIGTERM);
	ev_signal_start(pa.loop, &sigint);
	ev_signal_start(pa.loop, &sigterm);
	pa.rl_last = ev_now(pa.loop);

	fprintf(stderr, "payapi: %s listening on %s (port %u)\n", pa.name, listen_spec,
	        pa_bound_port(pa.lfd));
	fflush(stderr);
	ev_run(pa.loop, 0);

	close(pa.lfd);
	pa_store_free();
	fprintf(stderr, "payapi: %s stopped\n", pa.name);
	return 0;
}
