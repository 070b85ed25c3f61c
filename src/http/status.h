/*
 * status.h - HTTP status codes' reason phrases (RFC 9110 §15).
 */
#ifndef MOAT_HTTP_STATUS_H
#define MOAT_HTTP_STATUS_H

/* The registered reason phrase of `status`, or NULL for a code with none
 * (the caller picks its stand-in). */
const char *moat_http_reason(int status);

#endif
