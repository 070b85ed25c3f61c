/* ban_mod.h - the "bans" module (automatic and manual bans), see ban_mod.c. */
#ifndef MOAT_MOD_BAN_BAN_MOD_H
#define MOAT_MOD_BAN_BAN_MOD_H

#include "proxy/phase.h"

extern const struct moat_mod moat_mod_ban;

#endif
