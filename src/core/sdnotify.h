/*
 * sdnotify.h - the service manager's readiness protocol (systemd's
 * sd_notify(3)) and its socket activation (sd_listen_fds(3)), without
 * libsystemd: one datagram per state change to the AF_UNIX socket named
 * by $NOTIFY_SOCKET, and the inherited fds named by $LISTEN_PID and
 * $LISTEN_FDS.
 *
 * Nothing here knows what moat is: the control thread says when it is
 * ready, reloading or stopping. When $NOTIFY_SOCKET is unset every call is
 * a no-op, so moat behaves the same outside systemd.
 */
#ifndef MOAT_CORE_SDNOTIFY_H
#define MOAT_CORE_SDNOTIFY_H

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

/* The first fd of socket activation (SD_LISTEN_FDS_START). */
#define MOAT_SD_LISTEN_FDS_START 3

/* Reads $NOTIFY_SOCKET once (kept for the process's life: the variable
 * itself stays in the environment, so that a binary upgrade's new process
 * finds it too). Returns 1 when a socket is named and usable, 0 when none
 * is named, -EINVAL when the name is not an absolute path or an abstract
 * name ('@'). Control thread, before any other thread exists. */
int moat_sd_init(void);

/* Sends `state` ("READY=1", "MAINPID=42\nREADY=1", ...) as one datagram.
 * Returns 1 when sent, 0 when no socket is named, -errno when sending
 * failed (the caller logs it; moat runs on). Any thread. */
int moat_sd_notify(const char *state);

/* printf-style moat_sd_notify; the message is cut at 512 bytes. */
int moat_sd_notifyf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Fills `sa` and `*len` with the address of the notification socket named
 * `name`: an absolute path ("/run/systemd/notify") or an abstract name
 * starting with '@' (the '@' becomes the leading NUL byte). Returns 0, or
 * -EINVAL (empty, relative, or longer than sun_path). Pure.
 */
int moat_sd_addr(const char *name, struct sockaddr_un *sa, socklen_t *len);

/*
 * Socket activation: the number of fds passed from MOAT_SD_LISTEN_FDS_START
 * on, given the values of $LISTEN_PID and $LISTEN_FDS (either may be NULL)
 * and this process's pid. Returns 0 when the fds are not meant for `self`
 * (no variables, another pid), the count (1..`max`), or -EINVAL when the
 * values are malformed or the count is above `max`. Pure.
 */
int moat_sd_listen_count(const char *listen_pid, const char *listen_fds, pid_t self, int max);

#endif
