/* conn_mod.h - the "conn" module (limits.connections_per_ip), see conn_mod.c. */
#ifndef MOAT_MOD_CONN_CONN_MOD_H
#define MOAT_MOD_CONN_CONN_MOD_H

#include "proxy/phase.h"

extern const struct moat_mod moat_mod_conn;

#endif
