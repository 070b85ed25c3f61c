/* compress_mod.h - the "compress" module (on-the-fly response compression), see compress_mod.c. */
#ifndef MOAT_MOD_COMPRESS_COMPRESS_MOD_H
#define MOAT_MOD_COMPRESS_COMPRESS_MOD_H

#include "proxy/phase.h"

extern const struct moat_mod moat_mod_compress;

#endif
