/* waf_mod.h - the "waf" module (ModSecurity + OWASP CRS per route), see waf_mod.c. */
#ifndef MOAT_MOD_WAF_WAF_MOD_H
#define MOAT_MOD_WAF_WAF_MOD_H

#include "proxy/phase.h"

extern const struct moat_mod moat_mod_waf;

#endif
