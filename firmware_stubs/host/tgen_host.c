/* tgen_host.c -- runs the TriggerGenerator firmware as a host process on a pseudo-terminal.
 *
 * The firmware core and the example device are the same sources an MCU build compiles; this
 * file is the "board support": it opens a pty (the "serial line"), provides the clock
 * (CLOCK_MONOTONIC, ps since start) and a UART-like transmit buffer, and runs the main loop.
 *
 *   tgen-host [--link PATH] [--seed N]
 *
 * Prints "PTY /dev/pts/N" on stdout once the line is ready; with --link, also makes PATH a
 * symlink to it (like udev's /dev/serial/by-id names), replaced atomically and removed on
 * exit, so that a restarted firmware is found at the same address.
 *
 * Signals (test hooks): SIGUSR1 puts line noise on the wire towards the host (random bytes
 * and a cut frame); SIGUSR2 simulates an MCU reset behind a USB-serial bridge that stays
 * plugged in (new epoch, session and subscriptions gone, the pty stays); SIGTERM/SIGINT exit.
 *
 * Like a UART without flow control, bytes are never waited for: when the 64 KiB transmit
 * buffer is full (nobody reading), new bytes are dropped and the host sees corrupt frames. */
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "qn_proto.h"
#include "tgen.h"

#define TX_CAP 65536u

static uint8_t g_tx[TX_CAP];
static size_t g_tx_len;
static unsigned long g_tx_dropped;
static int g_master = -1;
static struct timespec g_start;
static volatile sig_atomic_t g_stop, g_noise, g_reset;
static uint64_t g_rng = 0x9E3779B97F4A7C15u;

static uint64_t rng_next(void)
{
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return g_rng;
}

static int64_t host_now_ps(void *ctx)
{
    struct timespec ts;
    (void)ctx;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ((int64_t)(ts.tv_sec - g_start.tv_sec) * 1000000000 + (ts.tv_nsec - g_start.tv_nsec))
           * 1000;
}

static void tx_flush(void)
{
    while (g_tx_len > 0) {
        ssize_t n = write(g_master, g_tx, g_tx_len);
        if (n <= 0) {
            return; /* EAGAIN: the pty is full; poll for POLLOUT */
        }
        memmove(g_tx, g_tx + n, g_tx_len - (size_t)n);
        g_tx_len -= (size_t)n;
    }
}

static void uart_write(void *ctx, const uint8_t *data, size_t len)
{
    (void)ctx;
    if (len > TX_CAP - g_tx_len) {
        g_tx_dropped += len;
        return;
    }
    memcpy(g_tx + g_tx_len, data, len);
    g_tx_len += len;
}

static void on_signal(int sig)
{
    if (sig == SIGUSR1) {
        g_noise = 1;
    } else if (sig == SIGUSR2) {
        g_reset = 1;
    } else {
        g_stop = 1;
    }
}

static void put_noise(void)
{
    static const uint8_t cut[] = {0x00, 0x0C, 0x83, 0xA1, 0x6B, 0xA3, 0x72, 0x65, 0x70};
    uint8_t junk[48];
    size_t i;
    for (i = 0; i < sizeof junk; i++) {
        junk[i] = (uint8_t)rng_next();
    }
    uart_write(NULL, junk, sizeof junk);
    uart_write(NULL, cut, sizeof cut); /* a frame cut short: the next 0x00 ends it */
}

static int open_pty(char *name, size_t cap, int *slave)
{
    struct termios t;
    int fd = posix_openpt(O_RDWR | O_NOCTTY);
    const char *sname;
    if (fd < 0 || grantpt(fd) != 0 || unlockpt(fd) != 0 || (sname = ptsname(fd)) == NULL) {
        perror("tgen-host: pty");
        return -1;
    }
    if (strlen(sname) + 1 > cap) {
        return -1;
    }
    strcpy(name, sname);
    /* keep one slave descriptor open: the master never sees a hang-up when the host
     * closes and reopens the port */
    *slave = open(name, O_RDWR | O_NOCTTY);
    if (*slave < 0 || tcgetattr(*slave, &t) != 0) {
        perror("tgen-host: slave");
        return -1;
    }
    cfmakeraw(&t);
    cfsetispeed(&t, B115200);
    cfsetospeed(&t, B115200);
    if (tcsetattr(*slave, TCSANOW, &t) != 0) {
        perror("tgen-host: tcsetattr");
        return -1;
    }
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) {
        perror("tgen-host: fcntl");
        return -1;
    }
    return fd;
}

static int make_link(const char *link, const char *target)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.%ld.tmp", link, (long)getpid()) >= (int)sizeof tmp) {
        return -1;
    }
    unlink(tmp);
    if (symlink(target, tmp) != 0 || rename(tmp, link) != 0) {
        perror("tgen-host: symlink");
        unlink(tmp);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static qn_engine engine;
    static tgen_device device;
    qn_device def;
    qn_platform plat;
    struct sigaction sa;
    char name[256];
    const char *link = NULL;
    int slave = -1;
    int i;
    uint64_t epoch;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--link") == 0 && i + 1 < argc) {
            link = argv[++i];
        } else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc) {
            g_rng = strtoull(argv[++i], NULL, 0) | 1u;
        } else {
            fprintf(stderr, "usage: %s [--link PATH] [--seed N]\n", argv[0]);
            return 2;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &g_start);
    g_rng ^= (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    epoch = rng_next();

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: poll() returns EINTR */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGUSR2, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    g_master = open_pty(name, sizeof name, &slave);
    if (g_master < 0) {
        return 1;
    }
    if (link != NULL && make_link(link, name) != 0) {
        return 1;
    }

    plat.write = uart_write;
    plat.write_ctx = NULL;
    plat.now_ps = host_now_ps;
    plat.clock_ctx = NULL;
    tgen_init(&device, &engine);
    tgen_describe(&device, &def);
    if (qn_engine_init(&engine, &def, &plat, epoch) != 0) {
        fprintf(stderr, "tgen-host: device exceeds the compile-time limits\n");
        return 1;
    }
    printf("PTY %s\n", name);
    fflush(stdout);

    while (!g_stop) {
        struct pollfd pfd;
        int64_t now, next, wait_ms;
        uint8_t buf[512];
        ssize_t n;

        if (g_reset) {
            g_reset = 0;
            tgen_init(&device, &engine);
            qn_engine_reset(&engine, rng_next());
        }
        if (g_noise) {
            g_noise = 0;
            put_noise();
        }
        now = host_now_ps(NULL);
        next = tgen_poll(&device, now);
        qn_engine_poll(&engine);
        tx_flush();
        wait_ms = next == INT64_MAX ? 50 : (next - now) / 1000000000 + 1;
        if (next <= now) {
            wait_ms = 0;
        }
        if (wait_ms > 50) {
            wait_ms = 50;
        }
        pfd.fd = g_master;
        pfd.events = (short)(POLLIN | (g_tx_len > 0 ? POLLOUT : 0));
        pfd.revents = 0;
        if (poll(&pfd, 1, (int)wait_ms) < 0) {
            if (errno == EINTR) {
                continue;
            }
            perror("tgen-host: poll");
            break;
        }
        if (pfd.revents & POLLIN) {
            n = read(g_master, buf, sizeof buf);
            if (n > 0) {
                qn_engine_rx(&engine, buf, (size_t)n);
            } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
                perror("tgen-host: read");
                break;
            }
        }
        tx_flush();
    }
    if (link != NULL) {
        unlink(link);
    }
    close(slave);
    close(g_master);
    fprintf(stderr, "tgen-host: exit (rx frames %lu, crc errors %lu, cobs errors %lu, "
            "oversized %lu, tx bytes dropped %lu)\n", (unsigned long)engine.rx.frames,
            (unsigned long)engine.rx.crc_errors, (unsigned long)engine.rx.cobs_errors,
            (unsigned long)engine.rx.oversized, g_tx_dropped);
    return 0;
}
