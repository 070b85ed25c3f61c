/*
 * main.c - moat's command line: parse arguments, load the config, start
 * the workers, then wait for signals on the control thread.
 *
 *   moat [-c FILE]                 run with a YAML config (default moat.yaml)
 *   moat -t [-c FILE]              validate the config and exit
 *   moat --print-config [-c FILE]  print the effective config
 *   moat proxy --from ADDR --to URL [--to URL ...] [--workers N] [--admin ADDR]
 *
 * Signals: SIGHUP reloads, SIGTERM and SIGINT stop gracefully, SIGUSR1
 * reopens the log files.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "conf/conf.h"
#include "core/log.h"
#include "proxy/admin.h"
#include "proxy/proxy.h"

#define MOAT_VERSION "0.1.0"
#define MAX_TO 64

static void usage(FILE *f)
{
	fprintf(f,
		"usage: moat [-c FILE]                 run with a YAML config (default: moat.yaml)\n"
		"       moat -t [-c FILE]              validate the config and exit\n"
		"       moat --print-config [-c FILE]  print the effective config and exit\n"
		"       moat proxy --from ADDR --to URL [--to URL ...] [--workers N] [--admin ADDR]\n"
		"       moat --version | --help\n"
		"signals: HUP reload, TERM/INT graceful stop, USR1 reopen logs\n");
}

static void print_errors(struct moat_conf_errors *e)
{
	if (e->buf && e->len)
		fputs(e->buf, stderr);
	moat_conf_errors_free(e);
}

static int open_logs(const struct moat_conf *c)
{
	int r = moat_log_open(c->error_log, (int)c->log_level);

	if (r < 0) {
		fprintf(stderr, "moat: cannot open error log %s: %s\n", c->error_log, strerror(-r));
		return r;
	}
	r = moat_alog_open(c->access_log);
	if (r < 0) {
		MOAT_ERR("cannot open access log %s: %s", c->access_log, strerror(-r));
		return r;
	}
	return 0;
}

static unsigned worker_count(const struct moat_conf *c)
{
	long n;

	if (c->workers)
		return c->workers;
	n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (unsigned)n : 1u;
}

static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int serve(struct moat_conf *conf, const char *path)
{
	struct moat_runtime rt;
	struct moat_admin *admin = NULL;
	sigset_t set;
	unsigned n = worker_count(conf);
	int err, sig;

	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGUSR1);
	/* Blocked before any thread exists: only this thread takes them. */
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();

	if (open_logs(conf) < 0) {
		moat_conf_free(conf);
		return 1;
	}
	memset(&rt, 0, sizeof(rt));
	rt.path = path;
	err = moat_runtime_start(&rt, conf, n);
	if (!err)
		err = moat_admin_start(&rt, MOAT_VERSION, &admin);
	if (err) {
		MOAT_ERR("start failed: %s", strerror(-err));
		moat_admin_stop(admin);
		moat_runtime_stop(&rt);
		moat_alog_shutdown();
		return 1;
	}
	MOAT_INFO("moat %s ready: %u workers, %zu listeners, pid %d", MOAT_VERSION, n,
		  conf->nlisteners, (int)getpid());

	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			char *why = NULL;

			if (!path) {
				MOAT_WARN("reload ignored: started without a config file");
				continue;
			}
			moat_runtime_reload_file(&rt, &why);
			free(why);
		} else if (sig == SIGUSR1) {
			/* Reopen logs for rotation, same destinations. */
			pthread_mutex_lock(&rt.lock);
			{
				const struct moat_conf *c = rt.current->conf;

				moat_log_open(c->error_log, (int)c->log_level);
				moat_alog_open(c->access_log);
			}
			pthread_mutex_unlock(&rt.lock);
			MOAT_INFO("logs reopened");
		} else {
			MOAT_INFO("signal %d: stopping, draining connections", sig);
			break;
		}
	}
	moat_admin_stop(admin);
	moat_runtime_stop(&rt);
	MOAT_INFO("stopped");
	moat_alog_shutdown();
	return 0;
}

static int cmd_proxy(int argc, char **argv)
{
	const char *from = NULL, *admin = NULL;
	const char *to[MAX_TO];
	size_t nto = 0;
	unsigned workers = 0;
	struct moat_conf_errors e = { 0 };
	struct moat_conf *c;

	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];

		if ((strcmp(a, "--from") == 0 || strcmp(a, "--to") == 0 || strcmp(a, "--workers") == 0 ||
		     strcmp(a, "--admin") == 0) &&
		    i + 1 >= argc) {
			fprintf(stderr, "moat proxy: %s needs a value\n", a);
			return 2;
		}
		if (strcmp(a, "--from") == 0) {
			from = argv[++i];
		} else if (strcmp(a, "--admin") == 0) {
			admin = argv[++i];
		} else if (strcmp(a, "--to") == 0) {
			if (nto == MAX_TO) {
				fprintf(stderr, "moat proxy: at most %d --to\n", MAX_TO);
				return 2;
			}
			to[nto++] = argv[++i];
		} else if (strcmp(a, "--workers") == 0) {
			char *end;
			long v = strtol(argv[++i], &end, 10);

			if (*end || v < 1 || v > 1024) {
				fprintf(stderr, "moat proxy: --workers: expected 1..1024, got \"%s\"\n", argv[i]);
				return 2;
			}
			workers = (unsigned)v;
		} else {
			fprintf(stderr, "moat proxy: unknown argument \"%s\"\n", a);
			usage(stderr);
			return 2;
		}
	}
	if (!from || nto == 0) {
		fprintf(stderr, "moat proxy: --from and at least one --to are required\n");
		usage(stderr);
		return 2;
	}
	c = moat_conf_from_proxy_args(from, to, nto, workers, &e);
	if (!c) {
		print_errors(&e);
		return 2;
	}
	if (admin && moat_conf_set_admin(c, admin, &e) < 0) {
		print_errors(&e);
		moat_conf_free(c);
		return 2;
	}
	moat_conf_errors_free(&e);
	return serve(c, NULL);
}

int main(int argc, char **argv)
{
	const char *path = "moat.yaml";
	int test = 0, print = 0;
	struct moat_conf_errors e = { 0 };
	struct moat_conf *c;

	if (argc > 1 && strcmp(argv[1], "proxy") == 0)
		return cmd_proxy(argc, argv);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
			if (i + 1 >= argc) {
				fprintf(stderr, "moat: %s needs a file\n", a);
				return 2;
			}
			path = argv[++i];
		} else if (strcmp(a, "-t") == 0 || strcmp(a, "--test") == 0) {
			test = 1;
		} else if (strcmp(a, "--print-config") == 0) {
			print = 1;
		} else if (strcmp(a, "-v") == 0 || strcmp(a, "--version") == 0) {
			printf("moat %s\n", MOAT_VERSION);
			return 0;
		} else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "moat: unknown argument \"%s\"\n", a);
			usage(stderr);
			return 2;
		}
	}
	c = moat_conf_load_file(path, &e);
	if (!c) {
		print_errors(&e);
		if (test)
			fprintf(stderr, "configuration test failed\n");
		return 1;
	}
	print_errors(&e);
	if (test) {
		printf("configuration OK\n");
		moat_conf_free(c);
		return 0;
	}
	if (print) {
		int r = moat_conf_print(c, stdout);

		moat_conf_free(c);
		return r < 0 ? 1 : 0;
	}
	return serve(c, path);
}
