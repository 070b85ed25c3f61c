/*
 * path.c - path normalisation for routing (see path.h).
 */
#include "http/path.h"

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int unreserved(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

int moat_path_normalize(const char *in, size_t len, char *out)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = 0, i = 0;

	if (len == 0 || in[0] != '/')
		return MOAT_PATH_EBAD;
	/* Decode unreserved escapes and fold slashes into out, segment by
	 * segment; dot-segments are resolved when a segment ends. */
	while (i < len && in[i] != '?' && in[i] != '#') {
		char ch = in[i];
		size_t seg;

		if (ch == '%') {
			int hi, lo;

			if (i + 2 >= len)
				return MOAT_PATH_EBAD;
			hi = hexval(in[i + 1]);
			lo = hexval(in[i + 2]);
			if (hi < 0 || lo < 0)
				return MOAT_PATH_EBAD;
			if (unreserved(hi * 16 + lo)) {
				out[n++] = (char)(hi * 16 + lo);
			} else {
				out[n++] = '%';
				out[n++] = hex[hi];
				out[n++] = hex[lo];
			}
			i += 3;
		} else if (ch == '/') {
			if (n == 0 || out[n - 1] != '/')
				out[n++] = '/';
			i++;
		} else {
			out[n++] = ch;
			i++;
		}
		/* At a segment's end, resolve "." and "..". */
		if (i < len && in[i] != '/' && in[i] != '?' && in[i] != '#')
			continue;
		seg = n;
		while (seg > 0 && out[seg - 1] != '/')
			seg--;
		if (n - seg == 1 && out[seg] == '.') {
			n = seg;
		} else if (n - seg == 2 && out[seg] == '.' && out[seg + 1] == '.') {
			if (seg <= 1)
				return MOAT_PATH_EESCAPE;
			n = seg - 1; /* drop the '/' before ".." ... */
			while (n > 0 && out[n - 1] != '/')
				n--; /* ... and the segment before it */
		}
	}
	if (n == 0)
		out[n++] = '/';
	out[n] = '\0';
	return (int)n;
}
