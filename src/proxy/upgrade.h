/*
 * upgrade.h - binary upgrade: a running moat starts its own binary again
 * and hands it every listening socket, so that a new version takes over
 * without refusing a connection. (Not HTTP's Upgrade, which txn.c tunnels.)
 *
 *   old process                              new process
 *   -----------                              -----------
 *   SIGUSR2
 *   fork; the child clears FD_CLOEXEC on
 *   the listening sockets and execs the
 *   binary with the same arguments  ───────> reads MOAT_INHERIT, MOAT_PARENT
 *   (still serving)                          loads its config; workers adopt
 *                                            the inherited sockets whose
 *                                            address stays, bind new ones;
 *                                            the rest are closed
 *                                            pid file, privilege drop,
 *                                            sd_notify MAINPID + READY
 *   SIGTERM from the new pid  <───────────── kill(MOAT_PARENT, SIGTERM)
 *   stops accepting, drains, exits 0         serving
 *
 * If the new process exits before that SIGTERM (bad config, crash), the
 * old one reaps it (SIGCHLD), logs why, and goes on serving.
 *
 * The sockets are the same kernel sockets in both processes (the old
 * process's SO_REUSEPORT group, one socket per worker per address): what
 * waits in an accept queue when the old process closes its descriptors is
 * accepted by the new one. Nothing is ever unbound.
 *
 * Environment of the new process:
 *   MOAT_INHERIT="FD:ADDR;FD:ADDR;..."   e.g. "5:127.0.0.1:8080;6:[::1]:8080"
 *   MOAT_PARENT="PID"                     who to tell (SIGTERM) once ready
 * Systemd socket activation ($LISTEN_FDS) feeds the same pool of
 * inherited sockets (see moat_inherit_load).
 */
#ifndef MOAT_PROXY_UPGRADE_H
#define MOAT_PROXY_UPGRADE_H

#include <pthread.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

#define MOAT_UPGRADE_ENV_INHERIT "MOAT_INHERIT"
#define MOAT_UPGRADE_ENV_PARENT  "MOAT_PARENT"
/* At most this many sockets are handed over (workers x listeners). */
#define MOAT_UPGRADE_MAX_FDS 4096

/* A listening socket and its address. */
struct moat_lfd {
	int fd;
	struct sockaddr_storage addr;
	socklen_t len;
	int taken;                  /* inherit pool: adopted by at least one worker */
};

/* Every listening socket of this process, kept by the workers as they
 * open and close them, read by the control thread when it forks the new
 * process. Owned by the runtime; `lock` guards the array, and a worker
 * removes an fd before it closes it, so that a number in the array is
 * never a reused descriptor. */
struct moat_lfds {
	pthread_mutex_t lock;
	struct moat_lfd *v;
	size_t n, cap;
};

void moat_lfds_init(struct moat_lfds *r);
void moat_lfds_destroy(struct moat_lfds *r);
/* Adds / removes a listening fd. Any thread. Add returns 0 or -ENOMEM (the
 * socket is then not handed over on an upgrade: logged by the caller). */
int moat_lfds_add(struct moat_lfds *r, int fd, const struct sockaddr *sa, socklen_t len);
void moat_lfds_del(struct moat_lfds *r, int fd);

/* The sockets this process was given at start (binary upgrade or socket
 * activation), until the workers adopted them. Owned by the control
 * thread's serve(); the workers take from it under `lock`. */
struct moat_inherit {
	pthread_mutex_t lock;
	struct moat_lfd *v;
	size_t n;
	pid_t parent;               /* the old process to stop once ready; 0 = none */
	const char *source;         /* "upgrade", "socket activation" or NULL, for logs */
};

/*
 * Fills `in` from the environment: MOAT_INHERIT (and MOAT_PARENT, which
 * must be this process's parent) or $LISTEN_PID/$LISTEN_FDS. Each fd must
 * be an open listening TCP socket; one from MOAT_INHERIT must also have
 * the address written beside it. Good ones get FD_CLOEXEC and O_NONBLOCK;
 * bad ones are logged and, when open, closed. The variables are removed
 * from the environment. Control thread, at start, after the logs are open.
 * Returns the number of sockets kept.
 */
size_t moat_inherit_load(struct moat_inherit *in);

/*
 * Worker `worker` (of `nworkers`) adopting address `sa`: the k-th inherited
 * socket of that address goes to worker k % nworkers, so that every one of
 * them gets a worker that accepts from it (the kernel keeps hashing
 * connections to each socket of a SO_REUSEPORT group); a worker beyond the
 * count shares a socket with another (a duplicate of worker % count's).
 * Writes up to `max` new descriptors (duplicates, FD_CLOEXEC: the pool
 * keeps its own until moat_inherit_close) to `fds`; returns how many
 * (0: none for this address), or -errno. Any thread.
 */
int moat_inherit_take(struct moat_inherit *in, const struct sockaddr *sa, unsigned worker, unsigned nworkers,
		      int *fds, size_t max);

/*
 * After every worker started: closes the pool's descriptors, logging those
 * no worker took (their address is not in the config any more). Control
 * thread.
 */
void moat_inherit_close(struct moat_inherit *in);

/* Whether worker `worker` of `nworkers` takes entry `k` among the `count`
 * inherited sockets of one address: every entry goes to some worker, and
 * every worker gets at least one. Pure; what moat_inherit_take applies. */
int moat_inherit_takes(size_t k, size_t count, unsigned worker, unsigned nworkers);

/* ---- the old process's side ---- */

/* What the control thread needs to start the binary again. */
struct moat_upgrade {
	char exe[4096];             /* absolute path of the binary, resolved at start */
	char *const *argv;          /* main's argv, NULL-terminated */
	pid_t child;                /* the new process while it starts; 0 = none */
};

/* Resolves the binary's path from argv[0] (made absolute against the
 * working directory, or looked up in $PATH; symlinks are kept, so that
 * re-pointing /usr/local/bin/moat at a new version is followed), falling
 * back to /proc/self/exe. Returns 0 or -errno (upgrades are then refused). */
int moat_upgrade_init(struct moat_upgrade *u, char *const *argv);

/*
 * SIGUSR2: forks and execs the binary with the same arguments and every
 * socket in `lfds`, described in MOAT_INHERIT. Returns the child's pid
 * (also kept in u->child) or -errno; logs each step. Control thread.
 */
pid_t moat_upgrade_start(struct moat_upgrade *u, struct moat_lfds *lfds);

/*
 * SIGCHLD: reaps the new process if it exited, logging how (the old
 * process keeps serving). Returns 1 when it had exited, 0 otherwise.
 * Control thread.
 */
int moat_upgrade_reap(struct moat_upgrade *u);

/*
 * The new process, once every worker listens: tells the old process
 * (`parent`, from MOAT_PARENT) to stop with SIGTERM, if it is still this
 * process's parent. Returns 0, or -ESRCH when it is gone. Control thread.
 */
int moat_upgrade_takeover(pid_t parent);

/* Formats the sockets as MOAT_INHERIT's value ("5:127.0.0.1:8080;...")
 * into buf; returns the length, or -ENOSPC. Pure. */
int moat_upgrade_format(const struct moat_lfd *v, size_t n, char *buf, size_t len);

/* Parses MOAT_INHERIT's value into at most `max` entries (fd and address;
 * `taken` zeroed). Returns the count or -EINVAL. Pure. */
int moat_upgrade_parse(const char *s, struct moat_lfd *v, size_t max);

#endif
