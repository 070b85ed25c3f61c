/*
 * daemon.h - what a long-running server does to its process: the pid
 * file, and giving up root once its sockets are bound.
 *
 * Control thread only (getpwnam and friends are not thread-safe, and the
 * pid file belongs to the process, not to a worker).
 */
#ifndef MOAT_CORE_DAEMON_H
#define MOAT_CORE_DAEMON_H

#include <stddef.h>
#include <sys/types.h>

/* Opens /dev/null on whichever of fds 0, 1 and 2 is closed, so that no
 * file or socket opened later takes one of them (and a binary upgrade may
 * borrow fd 0, see proxy/upgrade.c). Call first thing in main. Returns 0
 * or -errno. */
int moat_std_fds_open(void);

/* Writes "PID\n" to `path`, atomically: a temporary file beside it
 * ("PATH.PID.tmp", mode 0644) is renamed over it, so a reader never sees
 * it empty or half written. When the directory is not writable (a process
 * that dropped root, rewriting the file it was given: see main.c), the
 * file is rewritten in place instead. Returns 0 or -errno. */
int moat_pidfile_write(const char *path, pid_t pid);

/* Makes `path` belong to `user`:`group` (see moat_privs_lookup), so that
 * after the privilege drop this process, and a binary upgrade's new one,
 * can still rewrite it. Returns 0 or -errno. Root only. */
int moat_pidfile_give(const char *path, const char *user, const char *group);

/* The pid `path` holds, or -errno (-ENOENT: no file; -EINVAL: not a pid). */
pid_t moat_pidfile_read(const char *path);

/* Removes `path` if it still holds `pid`: after a binary upgrade it holds
 * the new process's pid and is left alone. Returns 1 when removed, 0 when
 * left (missing, or another pid), -errno when the removal failed. */
int moat_pidfile_remove(const char *path, pid_t pid);

/*
 * Looks up `user` and `group` (NULL: the user's login group) in the user
 * database. Returns 0 with *uid and *gid set, or -ENOENT with `why` filled
 * ("unknown user \"x\""). A name made of digits only is also taken as a
 * numeric id when the database does not know it.
 */
int moat_privs_lookup(const char *user, const char *group, uid_t *uid, gid_t *gid, char *why, size_t whylen);

/*
 * Can this process become `user`:`group`? Returns 0 when it runs as root
 * (it can), 1 when it already runs as exactly them (nothing to do: the
 * new process of a binary upgrade after an earlier drop), or a negative
 * error with `why` filled: the lookup's, or -EPERM ("needs root") for any
 * other unprivileged process.
 */
int moat_privs_check(const char *user, const char *group, char *why, size_t whylen);

/*
 * Becomes `user`:`group` for good: supplementary groups reduced to that
 * group, then the real, effective and saved gid and uid set. glibc applies
 * set*id to every thread of the process, so call it once, after every
 * privileged step (binding, the pid file, opening logs). Returns 0 when
 * the ids changed, 1 when they were already those (see moat_privs_check),
 * or a negative error with `why` filled; the process must not go on
 * serving after an error (it may be half-dropped).
 */
int moat_privs_drop(const char *user, const char *group, char *why, size_t whylen);

#endif
