/* acl_mod.h - the "acl" module (allow / deny by address), see acl_mod.c. */
#ifndef MOAT_MOD_ACL_ACL_MOD_H
#define MOAT_MOD_ACL_ACL_MOD_H

#include "proxy/phase.h"

extern const struct moat_mod moat_mod_acl;

#endif
