/* payspoa-proc.c: the daemon start/stop harness of the proto tests (contracts in
 * payspoa-proc.h). Test-side only: forks, execs and waits with deadlines. */
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "payspoa-proc.h"
#include "test.h"

/* pp_conf_variant's folder, and pp_conf's (made once: daemons may run from it) */
static char conf_dir[64], default_dir[64];

static void conf_dir_cleanup(void)
{
	char cmd[160];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", conf_dir, default_dir);
	if (system(cmd) != 0)
		fprintf(stderr, "  could not remove %s\n", conf_dir);
}

/* conf/ copied into dir (made anew), its payspoa.conf's outcome socket moved into dir:
 * never another run's (or the demo's) path. Returns that payspoa.conf in path. */
static void conf_copy(const char *dir, char *path, size_t pathlen)
{
	char cmd[512];

	if (!conf_dir[0] && !default_dir[0])
		atexit(conf_dir_cleanup);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' && mkdir -p '%s' && cp conf/*.conf '%s'/", dir, dir, dir);
	ASSERT_EQ(system(cmd), 0);
	snprintf(path, pathlen, "%s/payspoa.conf", dir);
	snprintf(cmd, sizeof(cmd), "sed -i 's|^\\([[:space:]]*outcome_socket[[:space:]]*=\\).*|\\1 \"%s/outcomes.sock\";|' '%s'",
	         dir, path);
	ASSERT_EQ(system(cmd), 0);
}

const char *pp_conf_variant(size_t n, const char *const from[], const char *const to[])
{
	static char path[96];
	char *text;
	FILE *f;
	long len;
	size_t i;

	if (!conf_dir[0]) {
		char d[sizeof(conf_dir)];

		snprintf(d, sizeof(d), "/tmp/payspoa-conf-%d", (int)getpid());
		conf_copy(d, path, sizeof(path));
		memcpy(conf_dir, d, sizeof(d));
	} else {
		conf_copy(conf_dir, path, sizeof(path));
	}
	if (!n)
		return path;
	f = fopen(path, "r");
	ASSERT(f);
	ASSERT_EQ(fseek(f, 0, SEEK_END), 0);
	len = ftell(f);
	rewind(f);
	text = calloc(1, (size_t)len + 1);
	ASSERT(text && fread(text, 1, (size_t)len, f) == (size_t)len);
	fclose(f);
	for (i = 0; i < n; i++) {
		char *hit = strstr(text, from[i]), *next;
		size_t head = hit ? (size_t)(hit - text) : 0, fl = strlen(from[i]), tl = strlen(to[i]);

		if (!hit)
			TEST_FAIL_("conf/payspoa.conf no longer contains \"%s\"", from[i]);
		next = malloc(strlen(text) - fl + tl + 1);
		ASSERT(next);
		memcpy(next, text, head);
		memcpy(next + head, to[i], tl);
		strcpy(next + head + tl, hit + fl);
		free(text);
		text = next;
	}
	f = fopen(path, "w");
	ASSERT(f);
	fputs(text, f);
	fclose(f);
	free(text);
	return path;
}

/* The daemon of the running case, for pp_cleanup at exit. */
static struct pp_daemon *pp_current;

const char *pp_bin(void)
{
	const char *b = getenv("PAYSPOA_BIN");

	return b && *b ? b : "./payspoa";
}

const char *pp_conf(void)
{
	const char *c = getenv("PAYSPOA_CONF");

	static char path[96];

	if (c && *c)
		return c;
	if (!default_dir[0]) {
		char d[sizeof(default_dir)];

		snprintf(d, sizeof(d), "/tmp/payspoa-conf-%d.default", (int)getpid());
		conf_copy(d, path, sizeof(path));
		memcpy(default_dir, d, sizeof(d));
	}
	return path;
}

int pp_free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	ASSERT(fd >= 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ASSERT_EQ(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ASSERT_EQ(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

void pp_cleanup(void)
{
	struct pp_daemon *d = pp_current;
	char line[1024];
	int shown = 0;
	FILE *f;

	if (!d)
		return;
	if (d->pid > 0 && !d->stopped) {
		kill(d->pid, SIGKILL);
		waitpid(d->pid, NULL, 0);
		d->stopped = true;
	}
	f = fopen(d->log, "r");
	while (f && shown < 30 && fgets(line, sizeof(line), f))
		if (strstr(line, "\"error\"") || strstr(line, "ERROR") || strstr(line, "Sanitizer") ||
		    strstr(line, "runtime error")) {
			fprintf(stderr, "  daemon: %s", line);
			shown++;
		}
	if (f)
		fclose(f);
	unlink(d->log);
	if (strncmp(d->addr, "unix:", 5) == 0)
		unlink(d->addr + 5);
	pp_current = NULL;
}

int pp_log_count(const struct pp_daemon *d, const char *needle)
{
	char line[1024];
	int n = 0;
	FILE *f = fopen(d->log, "r");

	while (f && fgets(line, sizeof(line), f))
		n += strstr(line, needle) != NULL;
	if (f)
		fclose(f);
	return n;
}

bool pp_log_has(const struct pp_daemon *d, const char *needle)
{
	return pp_log_count(d, needle) > 0;
}

bool pp_log_wait(const struct pp_daemon *d, const char *needle, int timeout_ms)
{
	uint64_t deadline = sc_now_us() + (uint64_t)test_scale_ms(timeout_ms) * 1000u;

	while (!pp_log_has(d, needle)) {
		if (sc_now_us() > deadline)
			return false;
		sc_sleep_ms(10);
	}
	return true;
}

void pp_start(struct pp_daemon *d, const char *conf, const char *listen, int workers,
              int nofile)
{
	static bool registered;
	uint64_t deadline = sc_now_us() + (uint64_t)test_scale_ms(20000) * 1000u;
	char w[16];
	int fd;

	memset(d, 0, sizeof(*d));
	if (listen)
		snprintf(d->addr, sizeof(d->addr), "%s", listen);
	else
		snprintf(d->addr, sizeof(d->addr), "127.0.0.1:%d", pp_free_port());
	snprintf(d->log, sizeof(d->log), "/tmp/payspoa-test-%d.log", (int)getpid());
	snprintf(w, sizeof(w), "%d", workers);
	pp_current = d;
	if (!registered)
		atexit(pp_cleanup);
	registered = true;
	d->pid = fork();
	ASSERT(d->pid >= 0);
	if (d->pid == 0) {
		int lfd = open(d->log, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (lfd >= 0) {
			dup2(lfd, 1);
			dup2(lfd, 2);
			close(lfd);
		}
		if (nofile > 0) {
			struct rlimit rl = { (rlim_t)nofile, (rlim_t)nofile };

			setrlimit(RLIMIT_NOFILE, &rl);
		}
		execl(pp_bin(), pp_bin(), "-f", conf ? conf : pp_conf(), "-l", d->addr, "-w", w,
		      (char *)NULL);
		_exit(127);
	}
	for (;;) {
		int st;

		if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
			d->stopped = true;
			TEST_FAIL_("%s exited at start (status 0x%x); log %s", pp_bin(), st, d->log);
		}
		fd = sc_connect(d->addr, 200);
		if (fd >= 0)
			break;
		if (sc_now_us() > deadline)
			TEST_FAIL_("%s does not accept on %s within %d ms", pp_bin(), d->addr, test_scale_ms(20000));
		sc_sleep_ms(10);
	}
	close(fd);
}

bool pp_alive(struct pp_daemon *d)
{
	return d->pid > 0 && !d->stopped && waitpid(d->pid, NULL, WNOHANG) == 0;
}

int pp_wait(struct pp_daemon *d, int timeout_ms)
{
	uint64_t deadline = sc_now_us() + (uint64_t)test_scale_ms(timeout_ms) * 1000u;
	int st;

	for (;;) {
		if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
			d->stopped = true;
			return st;
		}
		if (sc_now_us() > deadline) {
			kill(d->pid, SIGKILL);
			waitpid(d->pid, NULL, 0);
			d->stopped = true;
			return -1;
		}
		sc_sleep_ms(5);
	}
}

int pp_stop(struct pp_daemon *d, int sig, int timeout_ms)
{
	kill(d->pid, sig);
	return pp_wait(d, timeout_ms);
}

int pp_rss_kb(const struct pp_daemon *d)
{
	char path[64], line[256];
	FILE *f;
	int kb = -1;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)d->pid);
	f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %d kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb;
}

int pp_run(char *out, size_t outlen, ...)
{
	const char *argv[16];
	int pipefd[2], st, n = 0;
	size_t len = 0;
	va_list ap;
	pid_t pid;

	argv[n++] = pp_bin();
	va_start(ap, outlen);
	while (n < 15 && (argv[n] = va_arg(ap, const char *)) != NULL)
		n++;
	va_end(ap);
	argv[n] = NULL;
	ASSERT_EQ(pipe(pipefd), 0);
	pid = fork();
	ASSERT(pid >= 0);
	if (pid == 0) {
		alarm((unsigned)(test_scale_ms(10000) / 1000));
		dup2(pipefd[1], 1);
		dup2(pipefd[1], 2);
		close(pipefd[0]);
		execv(pp_bin(), (char *const *)argv);
		_exit(127);
	}
	close(pipefd[1]);
	for (;;) {
		ssize_t r = read(pipefd[0], out + len, outlen - 1 - len);

		if (r <= 0 || (len += (size_t)r) == outlen - 1)
			break;
	}
	out[len] = 0;
	close(pipefd[0]);
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

struct sc_conn *pp_hello(const char *addr)
{
	struct sc_conn *c = calloc(1, sizeof(*c));
	uint8_t buf[512];
	struct spop_wbuf w = spop_wbuf_init(buf, sizeof(buf));
	struct spop_frame f;
	uint64_t deadline = sc_now_us() + (uint64_t)test_scale_ms(2000) * 1000u;
	size_t n = spop_haproxy_hello(&w, "2.0", 16380, "pipelining", false, "test");
	int r;

	ASSERT(c);
	ASSERT(n > 0);
	for (;;) {
		int fd = sc_connect(addr, 2000);

		ASSERT(fd >= 0);
		sc_conn_init(c, fd);
		r = SC_BAD;
		if (sc_send_all(fd, buf, n, 2000) == 0 && (r = sc_read_frame(c, &f, 5000)) == SC_FRAME)
			break;
		close(fd);
		if (r != SC_CLOSED || sc_now_us() > deadline)
			TEST_FAIL_("no AGENT-HELLO from %s (%s)", addr, r == SC_TIMEOUT ? "silence" : "refused");
		sc_sleep_ms(10);
	}
	ASSERT_EQ(f.type, SPOP_FRM_AGENT_HELLO);
	return c;
}

void pp_close(struct sc_conn *c)
{
	close(c->fd);
	free(c);
}

void pp_decide(struct sc_conn *c, const struct sc_payreq *r, uint64_t sid,
               struct sc_ack *a)
{
	uint8_t buf[2048];
	struct spop_wbuf w = spop_wbuf_init(buf, sizeof(buf));
	struct spop_frame f;
	size_t n = sc_notify_payreq(&w, sid, 1, r);

	ASSERT(n > 0);
	ASSERT_EQ(sc_send_all(c->fd, buf, n, 2000), 0);
	ASSERT_EQ(sc_read_frame(c, &f, 5000), SC_FRAME);
	ASSERT_EQ(f.type, SPOP_FRM_ACK);
	ASSERT_EQ(f.stream_id, sid);
	ASSERT(sc_ack_decode(f.payload, f.len, a) > 0);
}
