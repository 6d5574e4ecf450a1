/* The least CPU a load client can spend per request on this machine (benchmarks/harness.py).
 *
 * A closed-loop HTTP/1.1 client that does only the socket calls a keep-alive load generator
 * cannot avoid: C connections (blocking connect on loopback, then non-blocking), one epoll
 * set (level-triggered), and per request one write() of the request bytes and the read()s
 * that bring its response in. It finds the end of a response by the blank line and the
 * Content-Length header, checks "200" in the status line, and sends the next request on the
 * same connection until N requests have been sent. Nothing else: no latency timing, no
 * histogram, no header parsing beyond Content-Length, no chunked bodies, no reconnects (a
 * connection that closes or errs counts its request as an error and is not replaced), no TLS.
 *
 *     cc -O2 -o floor_client benchmarks/floor_client.c
 *     floor_client HOST PORT PATH REQUESTS CONCURRENCY TIMEOUT_S
 *
 * Prints one JSON line: requests (responses read), ok (status 200), errors, run_cpu_s
 * (getrusage user+sys from before the first connect to the last response, like the engine's
 * load figure), run_wall_s (release of the first wave to the last response), connect_wall_s.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUF_SIZE 16384
#define MAX_EVENTS 1024

struct conn {
    int fd;
    size_t have;        /* bytes buffered of the current response */
    size_t need;        /* whole response length once the head is read, else 0 */
    char buf[BUF_SIZE];
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

/* Length of the whole response once its head is buffered; 0 while incomplete, -1 if bad. */
static long response_length(const char *buf, size_t have) {
    const char *end = memmem(buf, have, "\r\n\r\n", 4);
    if (end == NULL)
        return have >= BUF_SIZE ? -1 : 0;
    size_t head = (size_t)(end - buf) + 4;
    const char *line = memchr(buf, '\n', head);
    while (line != NULL && (size_t)(line - buf) + 1 < head) {
        line++;
        if (strncasecmp(line, "content-length:", 15) == 0)
            return (long)head + strtol(line + 15, NULL, 10);
        line = memchr(line, '\n', head - (size_t)(line - buf));
    }
    return -1; /* no Content-Length: not what this client reads */
}

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: %s HOST PORT PATH REQUESTS CONCURRENCY TIMEOUT_S\n", argv[0]);
        return 2;
    }
    const char *host = argv[1];
    int port = atoi(argv[2]);
    long remaining = atol(argv[4]);
    int c = atoi(argv[5]);
    double timeout_s = atof(argv[6]);
    if (port <= 0 || remaining <= 0 || c <= 0 || c > remaining || timeout_s <= 0) {
        fprintf(stderr, "bad arguments: need PORT > 0, 0 < CONCURRENCY <= REQUESTS, TIMEOUT_S > 0\n");
        return 2;
    }
    /* The same request bytes the engine sends for HttpTarget(url). */
    char request[1024];
    int request_len = snprintf(request, sizeof request,
                               "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: pytest-lambda-slo"
                               "\r\nAccept: */*\r\n\r\n",
                               argv[3], host, port);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
        fprintf(stderr, "HOST must be an IPv4 address, got %s\n", host);
        return 2;
    }
    struct conn *conns = calloc((size_t)c, sizeof *conns);
    int ep = epoll_create1(0);
    if (conns == NULL || ep < 0) {
        perror("setup");
        return 1;
    }
    double cpu0 = cpu_s(), t0 = now_s();
    for (int i = 0; i < c; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
            perror("connect");
            return 1;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        conns[i].fd = fd;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &conns[i]};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    }
    double t_release = now_s();
    long done = 0, ok = 0, errors = 0;
    int active = 0;
    for (int i = 0; i < c; i++) {
        remaining--;
        if (write(conns[i].fd, request, (size_t)request_len) == request_len) {
            active++;
        } else {
            errors++;
            close(conns[i].fd);
        }
    }
    double t_last = t_release, deadline = t_release + timeout_s;
    struct epoll_event events[MAX_EVENTS];
    while (active > 0) {
        int ready = epoll_wait(ep, events, MAX_EVENTS, 1000);
        if (ready < 0 && errno != EINTR) {
            perror("epoll_wait");
            break;
        }
        if (now_s() > deadline) {
            errors += active; /* in flight at the deadline */
            break;
        }
        for (int k = 0; k < ready; k++) {
            struct conn *cn = events[k].data.ptr;
            ssize_t got = read(cn->fd, cn->buf + cn->have, BUF_SIZE - cn->have);
            if (got < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            if (got <= 0) { /* closed or reset with a request pending */
                errors++;
                active--;
                close(cn->fd);
                continue;
            }
            cn->have += (size_t)got;
            if (cn->need == 0) {
                long need = response_length(cn->buf, cn->have);
                if (need < 0 || need > BUF_SIZE) {
                    errors++;
                    active--;
                    close(cn->fd);
                    continue;
                }
                cn->need = (size_t)need;
            }
            if (cn->need == 0 || cn->have < cn->need)
                continue;
            done++;
            ok += cn->have == cn->need && memcmp(cn->buf + 8, " 200", 4) == 0;
            errors += cn->have != cn->need; /* bytes past the response: not HTTP/1.1 we sent */
            cn->have = cn->need = 0;
            if (remaining > 0) {
                remaining--;
                if (write(cn->fd, request, (size_t)request_len) == request_len)
                    continue;
                errors++;
            }
            active--;
            close(cn->fd);
        }
        if (ready > 0)
            t_last = now_s();
    }
    double cpu = cpu_s() - cpu0;
    printf("{\"requests\": %ld, \"ok\": %ld, \"errors\": %ld, \"unsent\": %ld, \"run_cpu_s\": %.6f, "
           "\"run_wall_s\": %.6f, \"connect_wall_s\": %.6f, \"implementation\": \"c\"}\n",
           done, ok, errors, remaining, cpu, t_last - t_release, t_release - t0);
    return 0;
}
