/*
 * path.h - the request path moat routes on, normalised, pure.
 *
 * Routing on the raw target would let "/public/../admin" match a route for
 * /public/ while the backend resolves it to /admin. So routes are matched
 * against the normalised path; the raw target is what is forwarded.
 */
#ifndef MOAT_HTTP_PATH_H
#define MOAT_HTTP_PATH_H

#include <stddef.h>

#define MOAT_PATH_EESCAPE (-5201) /* ".." above the root: 400 */
#define MOAT_PATH_EBAD    (-5202) /* not an origin-form path, or a bad %-escape: 400 */

/*
 * Normalises the path of an origin-form target in[0..len) (the query, from
 * '?', is left out) into out (at least len + 1 bytes): %-escapes of
 * unreserved characters are decoded (so "%2e" is "."; others stay as they
 * are, hex made uppercase), dot-segments are removed (RFC 3986 5.2.4),
 * runs of '/' are folded into one. Returns the length written (out is
 * NUL-terminated), or MOAT_PATH_EESCAPE / MOAT_PATH_EBAD. Thread-safe.
 */
int moat_path_normalize(const char *in, size_t len, char *out);

#endif
