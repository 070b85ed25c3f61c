/*
 * cidr.h - IP addresses and CIDR blocks as text, and a longest-prefix-match
 * trie over them, pure.
 *
 * Used for allow / deny lists and trusted proxies: the lists are parsed
 * once, when a config is loaded, into a trie that every worker then looks
 * up for each accepted connection (and for each hop of X-Forwarded-For).
 * Parsing performs no I/O and no allocation; the trie allocates only in
 * moat_cidr_trie_add.
 *
 * Text forms are strict, so that two readers never disagree on what an
 * entry means: IPv4 is exactly four dotted decimal parts 0..255 with no
 * leading zero ("010.0.0.1" is refused: octal to inet_aton, decimal to
 * inet_pton); IPv6 is RFC 4291 section 2.2 (1 to 4 hex digits per group,
 * at most one "::", an optional dotted IPv4 tail), without zone ("%eth0")
 * or brackets; a prefix is "/" and 1 to 3 decimal digits without leading
 * zero, at most 32 (IPv4) or 128 (IPv6). No sign, no whitespace, no empty
 * part.
 *
 * IPv4-mapped IPv6 (::ffff:a.b.c.d) is one host with two spellings: a
 * dual-stack socket reports IPv4 clients that way. The parser keeps what
 * was written (an IPv6 block stays AF_INET6), but the trie files every
 * block inside ::ffff:0:0/96 as the IPv4 block it maps, and looks every
 * mapped address up as IPv4. So "10.0.0.0/8" and "::ffff:10.0.0.0/104" are
 * the same entry, and an IPv6 block that covers ::ffff:0:0/96 without
 * lying inside it (::/0, ::/8) matches no IPv4 client.
 */
#ifndef MOAT_CORE_CIDR_H
#define MOAT_CORE_CIDR_H

#include <stddef.h>
#include <sys/socket.h>

/*
 * Parses one IPv4 or IPv6 address s[0..len) (no prefix, forms above; s
 * need not be NUL-terminated). On success sets *family to AF_INET or
 * AF_INET6 and writes the address in network order to addr (4 or 16
 * bytes; for IPv4 the other 12 bytes are zeroed) and returns 0. Returns -1
 * on anything else, leaving the outputs untouched. Thread-safe.
 */
int moat_cidr_parse_addr(const char *s, size_t len, int *family, unsigned char addr[16]);

/*
 * Parses one CIDR block s[0..len): an address as moat_cidr_parse_addr,
 * optionally followed by "/prefix"; a bare address is a full-length block
 * (/32 or /128). Host bits past the prefix are masked off ("10.1.2.3/8"
 * gives 10.0.0.0/8): lists are written by hand and the intent is plain.
 * An explicitly written IPv4-mapped block stays AF_INET6 here (see the
 * file comment for how the trie treats it). On success writes *family,
 * addr (16 bytes, masked, zero past the address) and *prefix and returns
 * 0; returns -1 otherwise, leaving the outputs untouched. Thread-safe.
 */
int moat_cidr_parse(const char *s, size_t len, int *family, unsigned char addr[16], unsigned *prefix);

/*
 * A path-compressed binary trie mapping CIDR blocks to values >= 0, one
 * tree for IPv4 and one for IPv6, its nodes in one array (32 bytes per
 * node, fewer than two nodes per block); a family with 256 blocks or more
 * also gets a 512 KiB table indexed by the top 16 bits that skips the top
 * levels.
 *
 * Owner: whoever builds it (the config snapshot). Thread: add and free
 * from one thread; once the last add has returned and the trie is
 * published to other threads (e.g. with the snapshot that owns it), any
 * number of threads may look it up at once: lookups read only.
 */
struct moat_cidr_trie;

/* Returns an empty trie, or NULL when out of memory. */
struct moat_cidr_trie *moat_cidr_trie_new(void);

/*
 * Adds the block family/addr/prefix with `value` (>= 0). Bits of addr past
 * the prefix are ignored. The same block added again (after the mapping of
 * IPv4-mapped blocks to IPv4, above) replaces the value: the later wins.
 * Returns 0, -ENOMEM (the trie is unchanged and still usable) or -EINVAL
 * (NULL trie, family not AF_INET / AF_INET6, prefix too long, value < 0).
 * Not to be called while other threads look the trie up.
 */
int moat_cidr_trie_add(struct moat_cidr_trie *t, int family, const unsigned char addr[16], unsigned prefix,
		       int value);

/*
 * Returns the value of the longest block containing the address of `sa`
 * (AF_INET, or AF_INET6 where ::ffff:a.b.c.d is looked up as a.b.c.d), or
 * -1 when no block contains it, for any other family, a NULL sa or a NULL
 * trie. The port is ignored. No allocation; thread-safe on a built trie.
 */
int moat_cidr_trie_lookup(const struct moat_cidr_trie *t, const struct sockaddr *sa);

/*
 * As moat_cidr_trie_lookup, for a raw address in network order: 4 bytes
 * for AF_INET, 16 for AF_INET6 (mapped ones looked up as IPv4).
 */
int moat_cidr_trie_lookup_raw(const struct moat_cidr_trie *t, int family, const unsigned char *addr);

/* Returns the number of distinct blocks in the trie (0 for NULL). */
size_t moat_cidr_trie_count(const struct moat_cidr_trie *t);

/* Frees the trie; NULL is a no-op. No lookup may be running. */
void moat_cidr_trie_free(struct moat_cidr_trie *t);

/*
 * Parses a list file data[0..len) (need not be NUL-terminated): one block
 * per line in moat_cidr_parse form; '#' starts a comment to the end of the
 * line (whole line or after the entry); spaces and tabs around the entry,
 * blank lines and CRLF line ends are fine. Lines are counted from 1 and
 * columns in bytes from 1; a column points at the first byte of the entry.
 *
 * For each good entry calls entry(ctx, family, addr, prefix, line, col)
 * (as moat_cidr_parse outputs it: masked, IPv4-mapped kept as IPv6); a
 * negative return stops the parse, which returns that value. For each bad
 * line calls error(ctx, line, col, msg), msg being a NUL-terminated
 * message valid only during the call, e.g. expected a CIDR like 10.0.0.0/8
 * or 2001:db8::/32, got "10.0.0.256" (the text quoted, truncated past 64
 * bytes, bytes outside printable ASCII as \xNN), and goes on with the next
 * line. Either callback may be NULL.
 *
 * Returns the number of bad lines (0: all good; capped at INT_MAX), or the
 * negative value `entry` returned. No allocation; thread-safe.
 */
int moat_cidr_list_parse(const char *data, size_t len,
			 int (*entry)(void *ctx, int family, const unsigned char addr[16], unsigned prefix,
				      unsigned line, unsigned col),
			 void (*error)(void *ctx, unsigned line, unsigned col, const char *msg), void *ctx);

#endif
