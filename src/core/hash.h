/*
 * hash.h - a keyed 64-bit hash (SipHash-1-3) for tables whose keys come
 * from clients (rate-limit keys, ban and connection tables): with a secret
 * key, nobody outside can tell which inputs collide or share a shard.
 */
#ifndef MOAT_CORE_HASH_H
#define MOAT_CORE_HASH_H

#include <stddef.h>
#include <stdint.h>

/* SipHash-1-3 of data[0..len) under the key (k0, k1). Pure; any thread. */
uint64_t moat_siphash13(uint64_t k0, uint64_t k1, const void *data, size_t len);

#endif
