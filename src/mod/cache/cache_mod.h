/*
 * cache_mod.h - the "cache" policy module (cache_mod.c): moat's shared
 * HTTP cache on the routes whose config turns it on.
 */
#ifndef MOAT_MOD_CACHE_CACHE_MOD_H
#define MOAT_MOD_CACHE_CACHE_MOD_H

#include "proxy/phase.h"

extern const struct moat_mod moat_mod_cache;

#endif
