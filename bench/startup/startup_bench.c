/*
 * bench/startup: the same tiny PVH guest (it prints a line, writes the boot-timer marker and exits
 * through port 0xf4) run by kasou and by QEMU's microvm, alternating, N runs each. Reports the
 * median wall time from spawn to the guest's first serial line and to exit, the median peak RSS of
 * each, and the ratios kasou / QEMU.
 *
 * Written in C and kept small on purpose: a child's ru_maxrss counts the memory of the process
 * that forked it, so the launcher must not be a large process itself.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>

enum { MAX_RUNS = 1000 };

struct sample {
    double milliseconds;
    double first_line_ms; /* first newline on the child's standard output; -1 if none */
    long peak_kib;
    int status;
};

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* Where each child's standard error goes, shown when a run goes wrong. */
static char error_path[64];

static void show_errors(const char *what)
{
    fprintf(stderr, "%s wrote on its standard error:\n", what);
    FILE *errors = fopen(error_path, "r");
    char line[512];
    while (errors && fgets(line, sizeof line, errors))
        fputs(line, stderr);
    if (errors)
        fclose(errors);
}

static struct sample run(char *const argv[])
{
    struct sample s = { 0, -1, 0, -1 };
    int out[2];
    if (pipe(out) != 0)
        return s;
    double start = now_ms();
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        int errors = open(error_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(null, 0);
        dup2(out[1], 1);
        dup2(errors, 2);
        close(out[0]);
        close(out[1]);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(out[1]);
    /* The guest's serial output arrives on the pipe; read it to its end (the child's exit). */
    char buffer[4096];
    ssize_t n;
    while ((n = read(out[0], buffer, sizeof buffer)) > 0) {
        if (s.first_line_ms < 0 && memchr(buffer, '\n', (size_t)n))
            s.first_line_ms = now_ms() - start;
    }
    close(out[0]);
    int status = 0;
    struct rusage usage;
    wait4(pid, &status, 0, &usage);
    s.milliseconds = now_ms() - start;
    s.peak_kib = usage.ru_maxrss;
    s.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return s;
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

enum metric { WALL, FIRST_LINE, RSS };

static double median_of(struct sample *samples, int count, enum metric metric)
{
    double values[MAX_RUNS];
    for (int i = 0; i < count; ++i)
        values[i] = metric == RSS ? (double)samples[i].peak_kib : metric == FIRST_LINE ? samples[i].first_line_ms : samples[i].milliseconds;
    qsort(values, (size_t)count, sizeof(double), compare_double);
    return count % 2 ? values[count / 2] : (values[count / 2 - 1] + values[count / 2]) / 2;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s KASOU GUEST [RUNS] [QEMU]\n"
                        "  runs GUEST under `KASOU run` and under QEMU microvm, alternating, RUNS times each\n"
                        "  (default 20), and prints median wall time, median peak RSS and the ratios.\n",
            argv[0]);
        return 2;
    }
    char *kasou = argv[1], *guest = argv[2];
    int runs = argc > 3 ? atoi(argv[3]) : 20;
    char *qemu = argc > 4 ? argv[4] : "qemu-system-x86_64";
    if (runs < 1 || runs > MAX_RUNS) {
        fprintf(stderr, "RUNS must be between 1 and %d\n", MAX_RUNS);
        return 2;
    }
    /* Extra kasou arguments (e.g. "--irqchip kernel") come from KASOU_BENCH_ARGS, split at spaces. */
    char *kasou_argv[32] = { kasou, "run", "--kernel", guest, "--memory", "256M" };
    int kasou_argc = 6;
    char *extra = getenv("KASOU_BENCH_ARGS");
    for (char *word = extra ? strtok(extra, " ") : NULL; word && kasou_argc < 31; word = strtok(NULL, " "))
        kasou_argv[kasou_argc++] = word;
    kasou_argv[kasou_argc] = NULL;
    /* -L: QEMU's firmware (qboot, pvh.bin) where Debian installs it, wherever the binary lies. */
    char *qemu_argv[] = { qemu, "-L", "/usr/share/qemu", "-M", "microvm,accel=kvm", "-m", "256M", "-nodefaults", "-no-user-config", "-nographic",
        "-serial", "stdio", "-device", "isa-debug-exit,iobase=0xf4,iosize=4", "-kernel", guest, NULL };

    snprintf(error_path, sizeof error_path, "/tmp/bench_startup.%d.err", (int)getpid());
    static struct sample kasou_samples[MAX_RUNS], qemu_samples[MAX_RUNS];
    /* Exit status 1 is the guest's (debug exit 0), but also how QEMU fails: a run counts only
     * when the guest's line came out too. */
    for (int i = 0; i < runs; ++i) {
        struct {
            struct sample *sample;
            char *const *argv;
            const char *name;
        } vmms[] = { { &kasou_samples[i], kasou_argv, "kasou" }, { &qemu_samples[i], qemu_argv, "QEMU" } };
        for (int v = 0; v < 2; ++v) {
            *vmms[v].sample = run(vmms[v].argv);
            if (vmms[v].sample->status != 1 || vmms[v].sample->first_line_ms < 0) {
                fprintf(stderr, "run %d: %s ended with status %d, %s the guest's line (the guest exits with 1 after it)\n", i,
                    vmms[v].name, vmms[v].sample->status, vmms[v].sample->first_line_ms < 0 ? "without" : "after");
                show_errors(vmms[v].name);
                return 1;
            }
        }
    }
    unlink(error_path);
    double kasou_ms = median_of(kasou_samples, runs, WALL), qemu_ms = median_of(qemu_samples, runs, WALL);
    double kasou_line = median_of(kasou_samples, runs, FIRST_LINE), qemu_line = median_of(qemu_samples, runs, FIRST_LINE);
    double kasou_kib = median_of(kasou_samples, runs, RSS), qemu_kib = median_of(qemu_samples, runs, RSS);
    printf("startup: tiny PVH guest to exit, median of %d runs each, alternating\n", runs);
    printf("| | kasou | QEMU microvm | kasou / QEMU |\n|---|---|---|---|\n");
    printf("| wall time to the guest's first serial line | %.1f ms | %.1f ms | %.3f |\n", kasou_line, qemu_line, kasou_line / qemu_line);
    printf("| wall time to exit | %.1f ms | %.1f ms | %.3f |\n", kasou_ms, qemu_ms, kasou_ms / qemu_ms);
    printf("| peak RSS | %.1f MiB | %.1f MiB | %.3f |\n", kasou_kib / 1024, qemu_kib / 1024, kasou_kib / qemu_kib);
    return 0;
}
