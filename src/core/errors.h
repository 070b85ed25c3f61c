/*
 * errors.h - the error convention shared by every layer.
 *
 * Functions returning int use: 0 (or a positive count) for success,
 * MOAT_AGAIN when the operation would block or needs more input, and a
 * negative value for failure. System failures are reported as -errno; the
 * values below -4096 belong to moat's own error space (parsers, config).
 */
#ifndef MOAT_CORE_ERRORS_H
#define MOAT_CORE_ERRORS_H

#include <errno.h>

#define MOAT_OK     0
#define MOAT_AGAIN  (-EAGAIN)

#endif
