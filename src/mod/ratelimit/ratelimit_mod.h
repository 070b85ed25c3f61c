/* ratelimit_mod.h - the "ratelimit" module (named rate-limit policies), see ratelimit_mod.c. */
#ifndef MOAT_MOD_RATELIMIT_RATELIMIT_MOD_H
#define MOAT_MOD_RATELIMIT_RATELIMIT_MOD_H

#include "proxy/phase.h"

extern const struct moat_mod moat_mod_ratelimit;

#endif
