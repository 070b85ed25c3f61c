/*
 * demo_backend.c - the small backend `make run` starts behind moat so the
 * default config works with nothing else running. It answers every request
 * with a short page showing what it received (which shows what moat
 * forwarded: X-Forwarded-For, Forwarded, ...). One request per connection,
 * one at a time: a demo, not a server.
 *
 * usage: demo-backend [ADDR:]PORT   (default 127.0.0.1:8081)
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	const char *arg = argc > 1 ? argv[1] : "127.0.0.1:8081";
	const char *colon = strrchr(arg, ':');
	char host[64] = "127.0.0.1";
	int one = 1, fd;

	if (colon) {
		size_t n = (size_t)(colon - arg);

		if (n >= sizeof(host))
			return 2;
		memcpy(host, arg, n);
		host[n] = '\0';
		arg = colon + 1;
	}
	sa.sin_port = htons((unsigned short)atoi(arg));
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
		fprintf(stderr, "demo-backend: bad address %s\n", host);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 64) < 0) {
		perror("demo-backend");
		return 1;
	}
	for (;;) {
		char req[8192], resp[16384];
		struct timeval tv = { 5, 0 };
		size_t got = 0;
		int c = accept(fd, NULL, NULL);
		int body;

		if (c < 0)
			continue;
		setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		while (got < sizeof(req) - 1) {
			ssize_t r = read(c, req + got, sizeof(req) - 1 - got);

			if (r <= 0)
				break;
			got += (size_t)r;
			req[got] = '\0';
			if (strstr(req, "\r\n\r\n"))
				break;
		}
		req[got] = '\0';
		{
			char *end = strstr(req, "\r\n\r\n");

			if (end)
				end[2] = '\0';
		}
		body = snprintf(resp + 512, sizeof(resp) - 512,
				"Hello from the demo backend behind moat.\n\nThis is the request it received:\n\n%s",
				req);
		if (body < 0)
			body = 0;
		if ((size_t)body > sizeof(resp) - 513)
			body = (int)(sizeof(resp) - 513);
		{
			char head[512];
			int hl = snprintf(head, sizeof(head),
					  "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n"
					  "Content-Length: %d\r\nServer: demo-backend\r\nConnection: close\r\n\r\n",
					  body);
			ssize_t w = write(c, head, (size_t)hl);

			if (w >= 0)
				w = write(c, resp + 512, (size_t)body);
			(void)w;
		}
		close(c);
	}
}
