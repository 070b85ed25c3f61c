/*
 * main.c - moat's command line: parse arguments, load the config, start
 * the workers, then wait for signals on the control thread.
 *
 *   moat [-c FILE]                 run with a YAML config (default moat.yaml)
 *   moat -t [-c FILE]              validate the config and exit
 *   moat --print-config [-c FILE]  print the effective config
 *   moat proxy --from ADDR --to URL [--to URL ...] [--workers N] [--admin ADDR]
 *              [--cache SIZE] [--compress]
 *                                  one-line mode; --cache SIZE: a response cache
 *                                  of SIZE in memory ("256MiB") on the route;
 *                                  --compress: on-the-fly compression on it
 *
 * Signals: SIGHUP reloads, SIGTERM and SIGINT stop gracefully, SIGUSR1
 * reopens the log files, SIGUSR2 starts a binary upgrade (proxy/upgrade.h).
 *
 * Start-up, in order: logs opened; sockets inherited from a binary upgrade
 * or systemd taken in; workers started (each binds or adopts its
 * listeners); leftover inherited sockets closed; pid file written;
 * privileges dropped (user/group); "ready" logged and sent to systemd;
 * the old process of an upgrade told to stop. See docs/cli.md.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "conf/conf.h"
#include "core/daemon.h"
#include "core/log.h"
#include "core/sdnotify.h"
#include "mod/acl/acl_mod.h"
#include "mod/ban/ban_mod.h"
#include "mod/cache/cache_mod.h"
#include "mod/compress/compress_mod.h"
#include "mod/conn/conn_mod.h"
#include "mod/ratelimit/ratelimit_mod.h"
#include "mod/waf/waf_mod.h"
#include "proxy/admin.h"
#include "proxy/proxy.h"
#include "proxy/upgrade.h"

#define MOAT_VERSION "0.1.0"
#define MAX_TO 64

static void usage(FILE *f)
{
	fprintf(f,
		"usage: moat [-c FILE]                 run with a YAML config (default: moat.yaml)\n"
		"       moat -t [-c FILE]              validate the config and exit\n"
		"       moat --print-config [-c FILE]  print the effective config and exit\n"
		"       moat proxy --from ADDR --to URL [--to URL ...] [--workers N] [--admin ADDR]\n"
		"                  [--cache SIZE] [--compress] [--cert PATH [--key PATH]]\n"
		"                                      one-line mode; --to takes http://, https://, h2c://\n"
		"                                      and h2:// URLs; --cache 256MiB caches responses in\n"
		"                                      that much memory, --compress compresses them;\n"
		"                                      --cert makes --from a TLS listener with HTTP/2\n"
		"                                      (--key: the key's file when not in the cert's)\n"
		"       moat --version | --help\n"
		"signals: HUP reload, TERM/INT graceful stop, USR1 reopen logs, USR2 binary upgrade\n");
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

/* What serve() needs besides the config: main's argv, for an upgrade. */
static char *const *saved_argv;

/* After every worker listens: the steps that need the sockets bound and
 * come before serving. Returns 0, or -1 when moat must not go on. */
static int after_start(const struct moat_conf *conf, struct moat_inherit *inh)
{
	char why[256];
	int r;

	moat_inherit_close(inh);
	if (conf->pid_file) {
		r = moat_pidfile_write(conf->pid_file, getpid());
		if (r < 0) {
			MOAT_ERR("pid_file: cannot write %s: %s", conf->pid_file, strerror(-r));
			return -1;
		}
	}
	if (conf->user) {
		/* The pid file stays writable after the drop, for a binary
		 * upgrade's new process (which runs as the user from the start). */
		if (conf->pid_file && geteuid() == 0) {
			r = moat_pidfile_give(conf->pid_file, conf->user, conf->group);
			if (r < 0)
				MOAT_WARN("pid_file: cannot give %s to user %s: %s", conf->pid_file, conf->user,
					  strerror(-r));
		}
		r = moat_privs_drop(conf->user, conf->group, why, sizeof(why));
		if (r < 0) {
			MOAT_ERR("cannot drop privileges: %s", why);
			if (conf->pid_file)
				moat_pidfile_remove(conf->pid_file, getpid());
			return -1;
		}
		if (r == 0)
			MOAT_INFO("privileges dropped to user %s (uid %u, gid %u)", conf->user, (unsigned)getuid(),
				  (unsigned)getgid());
	}
	return 0;
}

#define TLS_WATCH_S 5    /* seconds between looks at the TLS files */

static uint64_t cur_generation(struct moat_runtime *rt)
{
	struct moat_confref *r = moat_runtime_current(rt);
	uint64_t g = r->generation;

	moat_confref_put(r);
	return g;
}

static int serve(struct moat_conf *conf, const char *path)
{
	struct moat_runtime rt;
	struct moat_admin *admin = NULL;
	struct moat_inherit inh;
	struct moat_upgrade up;
	sigset_t set;
	siginfo_t si;
	unsigned n = worker_count(conf);
	int err, sig, handover = 0;
	char *pid_file = NULL;
	uint64_t tls_sig, tls_gen;

	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	sigaddset(&set, SIGCHLD);
	/* Blocked before any thread exists: only this thread takes them. */
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();

	if (open_logs(conf) < 0) {
		moat_conf_free(conf);
		return 1;
	}
	if (moat_sd_init() < 0)
		MOAT_WARN("NOTIFY_SOCKET is neither an absolute path nor an abstract name; not notifying");
	moat_inherit_load(&inh);
	if (moat_upgrade_init(&up, saved_argv) < 0)
		MOAT_WARN("the binary's path is unknown: binary upgrades (SIGUSR2) will be refused");
	if (conf->user) {
		char why[256];

		if (moat_privs_check(conf->user, conf->group, why, sizeof(why)) < 0) {
			MOAT_ERR("%s", why);
			moat_inherit_close(&inh);
			moat_conf_free(conf);
			moat_alog_shutdown();
			return 1;
		}
	}
	memset(&rt, 0, sizeof(rt));
	rt.path = path;
	rt.inherit = &inh;
	err = moat_runtime_start(&rt, conf, n);
	if (!err)
		err = moat_admin_start(&rt, MOAT_VERSION, &admin);
	if (!err && after_start(conf, &inh) < 0)
		err = -EPERM;
	if (err) {
		if (err != -EPERM)
			MOAT_ERR("start failed: %s", strerror(-err));
		if (inh.parent)
			MOAT_ERR("upgrade: this new process gives up; the old one (pid %d) keeps serving",
				 (int)inh.parent);
		atomic_store(&rt.leave_queues, 1);
		moat_admin_stop(admin);
		moat_runtime_stop(&rt);
		moat_inherit_close(&inh);
		moat_alog_shutdown();
		return 1;
	}
	if (conf->pid_file)
		pid_file = strdup(conf->pid_file);
	MOAT_INFO("moat %s ready: %u workers, %zu listeners, pid %d", MOAT_VERSION, n,
		  conf->nlisteners, (int)getpid());
	/* MAINPID too: after a binary upgrade this process is the service's
	 * main one (the unit needs NotifyAccess=all for systemd to take it). */
	err = moat_sd_notifyf("MAINPID=%d\nREADY=1\nSTATUS=serving", (int)getpid());
	if (err < 0)
		MOAT_WARN("cannot notify systemd (NOTIFY_SOCKET): %s", strerror(-err));
	moat_upgrade_takeover(inh.parent);

	tls_sig = moat_runtime_tls_files_sig(&rt);
	tls_gen = cur_generation(&rt);
	for (;;) {
		/* Certificates replaced on disk (a renewal) are picked up like
		 * a SIGHUP: looked at every TLS_WATCH_S seconds. */
		struct timespec watch = { TLS_WATCH_S, 0 };

		sig = path && tls_sig ? sigtimedwait(&set, &si, &watch) : sigwaitinfo(&set, &si);
		if (sig < 0) {
			uint64_t now_sig;

			if (errno != EAGAIN)
				continue;
			now_sig = moat_runtime_tls_files_sig(&rt);
			if (cur_generation(&rt) != tls_gen) {
				/* reloaded meanwhile (admin API): the files were read then */
				tls_gen = cur_generation(&rt);
				tls_sig = now_sig;
			} else if (now_sig != tls_sig) {
				char *why = NULL;

				tls_sig = now_sig;
				MOAT_INFO("TLS files changed on disk: reloading");
				moat_runtime_reload_file(&rt, &why);
				free(why);
				tls_gen = cur_generation(&rt);
			}
			continue;
		}
		if (sig == SIGHUP) {
			char *why = NULL;

			if (!path) {
				MOAT_WARN("reload ignored: started without a config file");
				continue;
			}
			moat_runtime_reload_file(&rt, &why);
			free(why);
			tls_sig = moat_runtime_tls_files_sig(&rt);
			tls_gen = cur_generation(&rt);
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
		} else if (sig == SIGUSR2) {
			MOAT_INFO("upgrade: SIGUSR2 received");
			moat_upgrade_start(&up, &rt.lfds);
		} else if (sig == SIGCHLD) {
			moat_upgrade_reap(&up);
		} else if (up.child > 0 && si.si_pid == up.child && sig == SIGTERM) {
			/* The new process is ready and holds every socket. */
			handover = 1;
			MOAT_INFO("upgrade: the new process (pid %d) is ready; stopping, draining connections",
				  (int)up.child);
			break;
		} else {
			MOAT_INFO("signal %d: stopping, draining connections", sig);
			moat_sd_notify("STOPPING=1");
			break;
		}
	}
	moat_admin_stop(admin);
	if (handover)
		atomic_store(&rt.leave_queues, 1);
	moat_runtime_stop(&rt);
	if (pid_file) {
		int r = moat_pidfile_remove(pid_file, getpid());

		if (r < 0)
			MOAT_WARN("pid_file: cannot remove %s: %s", pid_file, strerror(-r));
		free(pid_file);
	}
	MOAT_INFO("stopped%s", handover ? " (upgraded)" : "");
	moat_alog_shutdown();
	return 0;
}

static int cmd_proxy(int argc, char **argv)
{
	const char *from = NULL, *admin = NULL, *cache = NULL, *cert = NULL, *key = NULL;
	const char *to[MAX_TO];
	size_t nto = 0;
	unsigned workers = 0;
	int compress = 0;
	struct moat_conf_errors e = { 0 };
	struct moat_conf *c;

	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];

		if ((strcmp(a, "--from") == 0 || strcmp(a, "--to") == 0 || strcmp(a, "--workers") == 0 ||
		     strcmp(a, "--admin") == 0 || strcmp(a, "--cache") == 0 || strcmp(a, "--cert") == 0 ||
		     strcmp(a, "--key") == 0) &&
		    i + 1 >= argc) {
			fprintf(stderr, "moat proxy: %s needs a value\n", a);
			return 2;
		}
		if (strcmp(a, "--from") == 0) {
			from = argv[++i];
		} else if (strcmp(a, "--admin") == 0) {
			admin = argv[++i];
		} else if (strcmp(a, "--cache") == 0) {
			cache = argv[++i];
		} else if (strcmp(a, "--compress") == 0) {
			compress = 1;
		} else if (strcmp(a, "--cert") == 0) {
			cert = argv[++i];
		} else if (strcmp(a, "--key") == 0) {
			key = argv[++i];
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
	if ((admin && moat_conf_set_admin(c, admin, &e) < 0) || (cache && moat_conf_set_cache(c, cache, &e) < 0) ||
	    ((cert || key) && moat_conf_set_tls(c, cert, key, &e) < 0)) {
		print_errors(&e);
		moat_conf_free(c);
		return 2;
	}
	if (compress)
		moat_conf_set_compress(c);
	moat_conf_errors_free(&e);
	return serve(c, NULL);
}

/* The policy modules, in the order their hooks run: connection limits and
 * bans first (cheapest, at accept), then address lists, rate limits, the
 * WAF (it may read the request body), then compression (it reads the
 * request's Accept-Encoding before the cache may answer or wait: a
 * background refresh or a coalesced request is compressed like any) and
 * the cache last (a hit is answered only after every gate passed; it
 * stores the bytes as compressed). */
static void set_modules(void)
{
	static const struct moat_mod *const mods[] = {
		&moat_mod_conn, &moat_mod_ban, &moat_mod_acl, &moat_mod_ratelimit, &moat_mod_waf,
		&moat_mod_compress, &moat_mod_cache,
	};

	moat_phase_set(mods, sizeof(mods) / sizeof(mods[0]));
}

/* `moat -t`: what the modules build from a config (WAF rule sets) is built
 * once and dropped, so a rule set that does not load fails the test. */
static int check_modules(struct moat_conf *c)
{
	struct moat_runtime rt;
	struct moat_confref r;
	char *why = NULL;
	int rc;

	memset(&rt, 0, sizeof(rt));
	memset(&r, 0, sizeof(r));
	r.conf = c;
	if (moat_phase_start(&rt, c) < 0) {
		fprintf(stderr, "moat: out of memory\n");
		return -1;
	}
	/* certificates and keys are loaded too: a broken one fails the test */
	rc = moat_tls_gen_build(&r, &why);
	if (rc == 0) {
		moat_tls_gen_free(&r);
		rc = moat_phase_gen_build(&rt, &r, &why);
	}
	if (rc < 0)
		fprintf(stderr, "%s\n", why ? why : "out of memory");
	else
		moat_phase_gen_free(&r);
	free(why);
	moat_phase_stop(&rt);
	return rc;
}

int main(int argc, char **argv)
{
	const char *path = "moat.yaml";
	int test = 0, print = 0;
	struct moat_conf_errors e = { 0 };
	struct moat_conf *c;

	set_modules();
	if (moat_std_fds_open() < 0) {
		/* a closed 0, 1 or 2 would be taken by a socket or a log */
		return 2;
	}
	saved_argv = argv;
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
		/* Warnings go to stderr; they do not fail the test. */
		moat_conf_lint(c, &e);
		print_errors(&e);
		if (check_modules(c) < 0) {
			fprintf(stderr, "configuration test failed\n");
			moat_conf_free(c);
			return 1;
		}
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
